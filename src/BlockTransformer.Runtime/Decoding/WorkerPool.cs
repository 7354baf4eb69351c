namespace BlockTransformer.Runtime;

/// <summary>
/// Background threads that each run one chunk of a kernel (or claim items until none are left). The
/// caller runs chunk 0 itself, then spins until the others are done; workers wait on a semaphore
/// between kernels. One kernel at a time.
/// </summary>
internal static unsafe class WorkerPool
{
    private static readonly object Gate = new();
    private static Worker[] workers = [];
    private static delegate*<void*, int, int, void> job;
    private static void* state;
    private static int items;
    private static int grain;
    private static int next;
    private static int threads;
    private static int pending;
    private static Exception? failure;

    [ThreadStatic]
    private static bool isWorker;

    public static bool IsWorkerThread => isWorker;

    /// <param name="itemGrain">0: thread t runs the t-th contiguous share of the items; otherwise threads claim this many items at a time.</param>
    public static void Run(int threadCount, int count, int itemGrain, delegate*<void*, int, int, void> body, void* workState)
    {
        lock (Gate)
        {
            if (workers.Length < threadCount - 1)
            {
                var grown = new Worker[threadCount - 1];
                workers.CopyTo(grown, 0);
                for (var i = workers.Length; i < grown.Length; i++)
                {
                    grown[i] = new Worker();
                }

                workers = grown;
            }

            job = body;
            state = workState;
            items = count;
            grain = itemGrain;
            next = 0;
            threads = threadCount;
            failure = null;
            Volatile.Write(ref pending, threadCount - 1);
            for (var t = 1; t < threadCount; t++)
            {
                workers[t - 1].Start(t);
            }

            RunShare(0);
            var spin = default(SpinWait);
            while (Volatile.Read(ref pending) > 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }

            if (failure is not null)
            {
                throw new AggregateException("a kernel failed on a worker thread", failure);
            }
        }
    }

    private static void RunShare(int chunk)
    {
        if (grain == 0)
        {
            job(state, First(chunk), End(chunk));
            return;
        }

        int start;
        while ((start = Interlocked.Add(ref next, grain) - grain) < items)
        {
            job(state, start, Math.Min(items, start + grain));
        }
    }

    private static int End(int chunk) => (int)((long)items * (chunk + 1) / threads);

    private static int First(int chunk) => (int)((long)items * chunk / threads);

    private sealed class Worker
    {
        private readonly SemaphoreSlim signal = new(0);
        private int chunk;

        // 16 MiB of stack (reserved, not committed): attention work items keep a query tile's scores on the stack.
        public Worker() => new Thread(Loop, 16 << 20) { IsBackground = true, Name = "bt-kernel-worker" }.Start();

        public void Start(int index)
        {
            chunk = index;
            signal.Release();
        }

        private void Loop()
        {
            isWorker = true;
            while (true)
            {
                signal.Wait();
                try
                {
                    RunShare(chunk);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                finally
                {
                    Interlocked.Decrement(ref pending);
                }
            }
        }
    }
}
