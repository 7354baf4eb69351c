using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

public class SamplerTests
{
    private static readonly float[] Logits = [3f, 2f, 1f, 0f, -1f];

    [Fact]
    public void GreedyPicksTheFirstMaximum() =>
        Assert.Equal(1, new Sampler(new SamplingOptions(), 4, 0).Sample([0f, 5f, 5f, 1f]));

    /// <summary>NaN logits are skipped wherever they are, short rows (scalar) and long (vector); all NaN gives id 0.</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(50)]
    public void GreedySkipsNaNLogits(int vocab)
    {
        var logits = Enumerable.Range(0, vocab).Select(i => (float)i).ToArray();
        logits[0] = logits[vocab - 1] = float.NaN;
        Assert.Equal(vocab - 2, Sampler.ArgMax(logits));
        Array.Fill(logits, float.NaN);
        Assert.Equal(0, Sampler.ArgMax(logits));
    }

    /// <summary>The vectorized argmax against a plain loop: maxima in every lane, in the tail, repeated, signed zeros.</summary>
    [Theory]
    [InlineData(50304)]
    [InlineData(101)]
    [InlineData(17)]
    [InlineData(3)]
    public void VectorArgMaxIsThePlainLoopsFirstMaximum(int vocab)
    {
        var random = new Random(vocab);
        for (var trial = 0; trial < 200; trial++)
        {
            var logits = Enumerable.Range(0, vocab).Select(_ => (float)Math.Round(random.NextDouble() * 20 - 10, trial % 3)).ToArray();
            if (trial % 5 == 0)
            {
                Array.Fill(logits, trial % 2 == 0 ? 0f : -0f);
                logits[random.Next(vocab)] = trial % 2 == 0 ? -0f : 0f;
            }

            var expected = 0;
            for (var i = 1; i < vocab; i++)
            {
                expected = logits[i] > logits[expected] ? i : expected;
            }

            Assert.Equal(expected, Sampler.ArgMax(logits));
        }
    }

    [Fact]
    public void TemperatureSamplingFollowsTheSoftmax()
    {
        const double temperature = 2.0;
        var sampler = new Sampler(new SamplingOptions { Greedy = false, Temperature = (float)temperature, Seed = 9 }, Logits.Length, 0);
        var counts = new int[Logits.Length];
        const int draws = 40_000;
        for (var i = 0; i < draws; i++)
        {
            counts[sampler.Sample(Logits)]++;
        }

        var weights = Logits.Select(l => Math.Exp(l / temperature)).ToArray();
        for (var i = 0; i < Logits.Length; i++)
        {
            var p = weights[i] / weights.Sum();
            var sigma = Math.Sqrt(p * (1 - p) / draws);
            Assert.InRange((double)counts[i] / draws, p - (5 * sigma), p + (5 * sigma));
        }
    }

    [Fact]
    public void TopKAndTopPKeepOnlyTheHead()
    {
        var topK = new Sampler(new SamplingOptions { Greedy = false, TopK = 2, Seed = 1 }, Logits.Length, 0);
        var topP = new Sampler(new SamplingOptions { Greedy = false, TopP = 0.5f, Seed = 1 }, Logits.Length, 0);
        var seenK = Enumerable.Range(0, 2000).Select(_ => topK.Sample(Logits)).ToHashSet();
        var seenP = Enumerable.Range(0, 2000).Select(_ => topP.Sample(Logits)).ToHashSet();
        Assert.Equal([0, 1], seenK.Order());
        Assert.Equal([0], seenP); // softmax(3) ≈ 0.64 already reaches p = 0.5
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndIndependentOfTheBatch()
    {
        using var model = TestModels.Find("tiny_block").CreateRandom(2, TensorDType.F32);
        var options = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false, Sampling = new SamplingOptions { Greedy = false, Temperature = 1.5f, TopK = 20, TopP = 0.9f, Seed = 42 } };
        var first = TextGenerator.For(model).Generate([[3, 4], [5]], options);
        var again = TextGenerator.For(model).Generate([[3, 4], [5]], options);
        var alone = TextGenerator.For(model).Generate([[3, 4]], options);
        var otherSeed = TextGenerator.For(model).Generate([[3, 4]], options with { Sampling = options.Sampling with { Seed = 43 } });
        Assert.Equal(first[0].GeneratedIds, again[0].GeneratedIds);
        Assert.Equal(first[1].GeneratedIds, again[1].GeneratedIds);
        Assert.Equal(first[0].GeneratedIds, alone[0].GeneratedIds);
        Assert.NotEqual(first[0].GeneratedIds, otherSeed[0].GeneratedIds);
    }

    [Fact]
    public void TopKOfOneIsGreedy()
    {
        using var model = TestModels.Find("tiny_vanilla").CreateRandom(2, TensorDType.F32);
        var greedy = TextGenerator.For(model).Generate([[3, 4]], new GenerationOptions { MaxNewTokens = 10, StopAtEos = false });
        var topOne = TextGenerator.For(model).Generate([[3, 4]], new GenerationOptions { MaxNewTokens = 10, StopAtEos = false, Sampling = new SamplingOptions { Greedy = false, TopK = 1, Temperature = 3f } });
        Assert.Equal(greedy[0].GeneratedIds, topOne[0].GeneratedIds);
    }

    [Theory]
    [InlineData(0f, 0, 1f, "temperature")]
    [InlineData(1f, -1, 1f, "top-k")]
    [InlineData(1f, 0, 1.5f, "top-p")]
    public void InvalidSamplingSettingsAreRefused(float temperature, int topK, float topP, string named) =>
        Assert.Contains(named, Assert.Throws<ArgumentException>(() =>
            new SamplingOptions { Greedy = false, Temperature = temperature, TopK = topK, TopP = topP }.Validate()).Message);
}
