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

    /// <summary>The kernel call and row block whose packed rows the buffer holds (call 0: none).</summary>
    [ThreadStatic]
    private static (long Call, int RowBlock) holds;

    private static long calls;

    public static float* Get(long length)
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = new AlignedBuffer(length);
            holds = default;
        }

        return buffer.Pointer;
    }

    /// <summary>A number identifying one kernel call, for <see cref="NeedsPacking"/>.</summary>
    public static long NextCall() => Interlocked.Increment(ref calls);

    /// <summary>
    /// Whether the calling thread must pack row block <paramref name="rowBlock"/> (its first row) of kernel
    /// call <paramref name="call"/> into its buffer; afterwards the buffer is taken to hold it. Threads claim
    /// a linear kernel's items row block by row block, so each packs a row block once however many of its
    /// chunks it runs.
    /// </summary>
    public static bool NeedsPacking(long call, int rowBlock)
    {
        if (holds == (call, rowBlock))
        {
            return false;
        }

        holds = (call, rowBlock);
        return true;
    }
}
