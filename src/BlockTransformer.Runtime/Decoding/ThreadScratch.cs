using System.Diagnostics.CodeAnalysis;

namespace BlockTransformer.Runtime;

/// <summary>
/// Float buffers per thread: one for kernels that repack their inputs (the linear layers' packed row
/// tiles), one for attention's score tiles. Each grows to the largest request and lives as long as the
/// thread; the worker threads are persistent, so decode steps do not allocate.
/// </summary>
public static unsafe class ThreadScratch
{
    [ThreadStatic]
    private static AlignedBuffer? buffer;

    [ThreadStatic]
    private static AlignedBuffer? scores;

    /// <summary>The kernel call and row block whose packed rows the buffer holds (call 0: none).</summary>
    [ThreadStatic]
    private static (long Call, int RowBlock) holds;

    private static long calls;

    public static float* Get(long length)
    {
        if (Grow(ref buffer, length))
        {
            holds = default;
        }

        return buffer.Pointer;
    }

    /// <summary>
    /// The calling thread's attention score tile (QueryTile × (MaxContext + 16) floats: 256 KiB at 4096
    /// positions, 4 MiB at 65536). It is not on the stack because the thread that calls a kernel runs a
    /// share of its items, and a thread-pool thread's stack is 1.5 MiB on Linux.
    /// </summary>
    public static float* Scores(long length)
    {
        Grow(ref scores, length);
        return scores.Pointer;
    }

    /// <summary>Replaces <paramref name="target"/> with a larger buffer if it holds fewer than <paramref name="length"/> floats; true if it did.</summary>
    private static bool Grow([NotNull] ref AlignedBuffer? target, long length)
    {
        if (target is not null && target.Length >= length)
        {
            return false;
        }

        target?.Dispose();
        target = new AlignedBuffer(length);
        return true;
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
