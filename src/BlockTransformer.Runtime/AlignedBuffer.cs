using System.Runtime.InteropServices;

namespace BlockTransformer.Runtime;

/// <summary>
/// Native float storage aligned to 64 bytes (one AVX-512 vector / cache line), so generated kernels can
/// use aligned-friendly loads and the GC never moves weights or caches under a pointer.
/// </summary>
public sealed unsafe class AlignedBuffer : IDisposable
{
    public const int Alignment = 64;

    private float* pointer;

    public AlignedBuffer(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        pointer = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, length) * sizeof(float), Alignment);
        NativeMemory.Clear(pointer, (nuint)length * sizeof(float));
        NativeMemoryStats.Add(length * sizeof(float));
    }

    ~AlignedBuffer() => Free();

    public long Length { get; }

    public float* Pointer => pointer != null ? pointer : throw new ObjectDisposedException(nameof(AlignedBuffer));

    /// <summary>The whole buffer as a span; only for buffers shorter than int.MaxValue elements.</summary>
    public Span<float> Span => new(Pointer, checked((int)Length));

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (pointer != null)
        {
            NativeMemory.AlignedFree(pointer);
            pointer = null;
            NativeMemoryStats.Add(-Length * sizeof(float));
        }
    }
}
