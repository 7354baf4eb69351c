using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>
/// `bt bench` measures memory per sample from generate calls it cancels in their second block (on the
/// CPU). That is right only if a call has allocated everything it holds by then, whatever the lengths:
/// these tests compare the peak of such a call with the peak of the same call run to the end.
/// </summary>
[Collection(NativeMemoryCollection.Name)]
public sealed class MemoryPeakTests
{
    [Theory]
    [InlineData("tiny_block", 3, 40)]
    [InlineData("tiny_block", 30, 9)]
    [InlineData("tiny_vanilla", 3, 40)]
    [InlineData("tiny_vanilla", 30, 9)]
    [InlineData("tiny_vanilla", 1, 9)] // batch 2's first decode step has more rows than its 1-token prefills
    public void PeakIsReachedByTheSecondBlock(string name, int promptLength, int genLength)
    {
        using var model = TestModels.Find(name).CreateRandom(4, TensorDType.F32);
        var generator = TextGenerator.For(model);
        generator.LogitsInCallback = false; // as bench runs it: greedy tokens picked inside the LM head
        var options = new GenerationOptions { MaxNewTokens = genLength, StopAtEos = false };
        var stopAfter = 2 * model.Info.BlockLength;
        Peak(generator, 1, promptLength, options, stopAfter: null); // the per-thread buffers every call shares
        for (var batch = 1; batch <= 2; batch++)
        {
            var full = Peak(generator, batch, promptLength, options, stopAfter: null);
            var cancelled = Peak(generator, batch, promptLength, options, stopAfter);
            Assert.True(full >= model.Info.KvCacheBytes(promptLength, genLength, batch), $"batch {batch}: a peak of {full} bytes holds less than the KV cache");
            Assert.Equal(full, cancelled);
        }
    }

    /// <summary>Native bytes allocated at the peak of one generate call, cancelled once sequence 0 has <paramref name="stopAfter"/> tokens.</summary>
    private static long Peak(TextGenerator generator, int batch, int promptLength, GenerationOptions options, int? stopAfter)
    {
        var prompts = Enumerable.Range(0, batch).Select(b => Enumerable.Range(1, promptLength).Select(i => ((i * 7) + b) % generator.Model.Info.VocabSize).ToArray()).ToArray();
        using var stop = new CancellationTokenSource();
        var seen = 0;
        var before = NativeMemoryStats.CurrentBytes;
        NativeMemoryStats.ResetPeak();
        try
        {
            generator.Generate(prompts, options, (sequence, _, _) =>
            {
                if (sequence == 0 && ++seen == stopAfter)
                {
                    stop.Cancel();
                }
            }, stop.Token);
            Assert.Null(stopAfter);
        }
        catch (OperationCanceledException)
        {
            Assert.Equal(stopAfter, seen);
        }

        return NativeMemoryStats.PeakBytes - before;
    }
}

/// <summary>Tests that read the process-wide <see cref="NativeMemoryStats"/>: they run alone, after the others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeMemoryCollection
{
    public const string Name = "native memory";
}
