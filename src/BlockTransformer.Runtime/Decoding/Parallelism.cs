namespace BlockTransformer.Runtime;

/// <summary>Splits a kernel's independent items across cores when the work is large enough to pay for it.</summary>
public static class Parallelism
{
    /// <summary>Below this many multiply-adds a kernel runs on the calling thread.</summary>
    public const long MinParallelWork = 1 << 16;

    /// <summary>Threads a kernel may use; defaults to the core count, or to the BT_THREADS environment variable.</summary>
    public static int MaxThreads { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("BT_THREADS"), out var threads) && threads > 0 ? threads : Environment.ProcessorCount;

    /// <summary>Runs body(start, end) over [0, count) in contiguous chunks, one per thread.</summary>
    public static void For(int count, long workPerItem, Action<int, int> body)
    {
        var threads = (int)Math.Min(Math.Min(MaxThreads, count), Math.Max(1, count * workPerItem / MinParallelWork));
        if (threads <= 1)
        {
            body(0, count);
            return;
        }

        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            body((int)((long)count * t / threads), (int)((long)count * (t + 1) / threads)));
    }
}
