namespace BlockTransformer.Runtime;

/// <summary>
/// Reusable activation buffers for generated decoder code, indexed by small constants. They grow to the
/// largest request seen and are then reused, so the decode loop does not allocate.
/// </summary>
public sealed unsafe class Scratch : IDisposable
{
    private AlignedBuffer?[] buffers = new AlignedBuffer?[8];

    public float* Get(int index, long length)
    {
        if (index >= buffers.Length)
        {
            Array.Resize(ref buffers, index + 1);
        }

        var buffer = buffers[index];
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = buffers[index] = new AlignedBuffer(length);
        }

        return buffer.Pointer;
    }

    public void Dispose()
    {
        foreach (var buffer in buffers)
        {
            buffer?.Dispose();
        }
    }
}
