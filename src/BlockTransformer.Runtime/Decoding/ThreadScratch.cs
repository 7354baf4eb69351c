namespace BlockTransformer.Runtime;

/// <summary>
/// One float buffer per thread for kernels that repack their inputs (the linear layers' packed row
/// tiles). It grows to the largest request and lives as long as the thread; the worker threads are
/// persistent, so decode steps do not allocate.
/// </summary>
public static unsafe class ThreadScratch
{
    [ThreadStatic]
    private static AlignedBuffer? buffer;

    public static float* Get(long length)
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = new AlignedBuffer(length);
        }

        return buffer.Pointer;
    }
}
