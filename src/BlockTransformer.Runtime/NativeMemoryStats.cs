namespace BlockTransformer.Runtime;

/// <summary>
/// Bytes held in <see cref="AlignedBuffer"/>s (weights, KV caches, activations): the memory a model
/// really uses, which `bt bench` turns into memory per sample the way the paper does (slope of the
/// peak over batch size).
/// </summary>
public static class NativeMemoryStats
{
    private static long current;
    private static long peak;

    public static long CurrentBytes => Interlocked.Read(ref current);

    public static long PeakBytes => Interlocked.Read(ref peak);

    /// <summary>Starts a new peak measurement from what is allocated now.</summary>
    public static void ResetPeak() => Interlocked.Exchange(ref peak, CurrentBytes);

    internal static void Add(long bytes)
    {
        var now = Interlocked.Add(ref current, bytes);
        long seen;
        while (now > (seen = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, now, seen) != seen)
        {
        }
    }
}
