using System.Runtime.CompilerServices;

namespace BlockTransformer.Runtime;

/// <summary>A kernel's independent items [start, end), run by one thread. Generated kernels are structs implementing this.</summary>
public interface IParallelWork
{
    void Run(int start, int end);
}

/// <summary>
/// Splits a kernel's independent items across cores when the work is large enough to pay for it. Work is
/// passed by reference as a struct and run by persistent worker threads, so a call allocates nothing
/// (no closure, no delegate, no Parallel.For state): a decode step stays at 0 bytes allocated.
/// </summary>
public static unsafe class Parallelism
{
    /// <summary>Below this many multiply-adds a kernel runs on the calling thread.</summary>
    public const long MinParallelWork = 1 << 16;

    /// <summary>Threads a kernel may use; defaults to the core count, or to the BT_THREADS environment variable.</summary>
    public static int MaxThreads { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("BT_THREADS"), out var threads) && threads > 0 ? threads : Environment.ProcessorCount;

    /// <summary>Runs work.Run over [0, count) in contiguous chunks, one per thread; returns when all are done.</summary>
    public static void For<TWork>(int count, long workPerItem, ref TWork work)
        where TWork : struct, IParallelWork => Run(count, workPerItem, grain: 0, ref work);

    /// <summary>
    /// Like <see cref="For"/>, for items of uneven cost (causal attention: a late query row attends to
    /// more keys than an early one): threads claim <paramref name="grain"/> items at a time until none are
    /// left, so one thread does not finish its half early and wait for the other.
    /// </summary>
    public static void ForUneven<TWork>(int count, long workPerItem, int grain, ref TWork work)
        where TWork : struct, IParallelWork => Run(count, workPerItem, Math.Max(1, grain), ref work);

    private static void Run<TWork>(int count, long workPerItem, int grain, ref TWork work)
        where TWork : struct, IParallelWork
    {
        var threads = (int)Math.Min(Math.Min(MaxThreads, count), Math.Max(1, count * workPerItem / MinParallelWork));
        if (threads <= 1 || WorkerPool.IsWorkerThread)
        {
            work.Run(0, count);
            return;
        }

        // The struct lives in the caller's frame, which waits until every worker is done with it.
        WorkerPool.Run(threads, count, grain, &Invoke<TWork>, Unsafe.AsPointer(ref work));
    }

    private static void Invoke<TWork>(void* state, int start, int end)
        where TWork : struct, IParallelWork => Unsafe.AsRef<TWork>(state).Run(start, end);
}
