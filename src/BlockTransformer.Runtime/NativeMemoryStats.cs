namespace BlockTransformer.Runtime;

/// <summary>
/// Bytes held in <see cref="AlignedBuffer"/>s (weights, KV caches, activations): the memory a model
/// really uses, which `bt bench` turns into memory per sample the way the paper does (slope of the
/// peak over batch size). Two counts: the bytes allocated (large buffers take whole huge pages) and the
/// bytes the buffers asked for. The slope is taken from the second: a buffer that crosses the huge-page
/// size between batch 1 and batch 2 (a 3.2 MB KV cache at batch 1, 6.4 MB at 2) would otherwise add up
/// to 2 MiB of rounding to every sample (measured: 5.24 instead of 3.44 MB for block_main_b4_5 at 2048 → 128).
/// </summary>
public static class NativeMemoryStats
{
    private static long current;
    private static long peak;
    private static long requested;
    private static long requestedPeak;

    public static long CurrentBytes => Interlocked.Read(ref current);

    public static long PeakBytes => Interlocked.Read(ref peak);

    /// <summary>Bytes the live buffers asked for, before rounding to huge pages.</summary>
    public static long RequestedBytes => Interlocked.Read(ref requested);

    /// <summary>The most <see cref="RequestedBytes"/> since <see cref="ResetPeak"/>.</summary>
    public static long RequestedPeakBytes => Interlocked.Read(ref requestedPeak);

    /// <summary>Starts a new peak measurement (of both counts) from what is allocated now.</summary>
    public static void ResetPeak()
    {
        Interlocked.Exchange(ref peak, CurrentBytes);
        Interlocked.Exchange(ref requestedPeak, RequestedBytes);
    }

    internal static void Add(long allocatedBytes, long requestedBytes)
    {
        Raise(ref peak, Interlocked.Add(ref current, allocatedBytes));
        Raise(ref requestedPeak, Interlocked.Add(ref requested, requestedBytes));
    }

    private static void Raise(ref long highest, long now)
    {
        long seen;
        while (now > (seen = Interlocked.Read(ref highest)) && Interlocked.CompareExchange(ref highest, now, seen) != seen)
        {
        }
    }
}
