using BlockTransformer.Runtime;
using Xunit;

namespace BlockTransformer.Tests;

public sealed unsafe class ParallelismTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(7, 0)]
    [InlineData(1001, 0)]
    [InlineData(7, 1)]
    [InlineData(1001, 1)]
    [InlineData(1001, 64)]
    public void EveryItemRunsExactlyOnce(int count, int grain)
    {
        var runs = new int[count];
        fixed (int* counts = runs)
        {
            var work = new CountingWork { Counts = counts };

            // Enough work per item that the pool splits it across threads.
            if (grain == 0)
            {
                Parallelism.For(count, Parallelism.MinParallelWork, ref work);
            }
            else
            {
                Parallelism.ForUneven(count, Parallelism.MinParallelWork, grain, ref work);
            }
        }

        Assert.All(runs, r => Assert.Equal(1, r));
    }

    private struct CountingWork : IParallelWork
    {
        public int* Counts;

        public readonly void Run(int start, int end)
        {
            for (var i = start; i < end; i++)
            {
                Interlocked.Increment(ref Counts[i]);
            }
        }
    }
}
