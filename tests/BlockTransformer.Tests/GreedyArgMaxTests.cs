using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>Greedy decoding that picks tokens inside the LM head, never writing logits.</summary>
public unsafe class GreedyArgMaxTests
{
    /// <summary>
    /// The fused LM head's choice is exactly the argmax of the logits the plain LM head writes (the same
    /// tiles compute both), over one row, several row tiles, and two row blocks of tiny_vanilla_vocab's
    /// 252 rows, each thread folding many chunks of panel pairs.
    /// </summary>
    [Theory]
    [InlineData("tiny_vanilla_vocab", 1)]
    [InlineData("tiny_vanilla_vocab", 37)]
    [InlineData("tiny_vanilla_vocab", 300)]
    [InlineData("tiny_block", 13)]
    [InlineData("tiny_block_bf16", 5)]
    public void LmHeadArgMaxIsTheArgMaxOfTheLogits(string name, int rows)
    {
        using var model = TestModels.Find(name).CreateRandom(5, TensorDType.F32);
        var random = new Random(rows);
        var hidden = Enumerable.Range(0, rows * model.Info.Decoder.Hidden).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        var vocab = model.Info.VocabSize;
        var logits = new float[rows * vocab];
        model.LmHead(hidden, rows, logits);

        var tokens = new int[rows];
        model.LmHeadArgMax(hidden, rows, tokens);

        var expected = Enumerable.Range(0, rows).Select(r => Sampler.ArgMax(logits.AsSpan(r * vocab, vocab))).ToArray();
        Assert.Equal(expected, tokens);
        Assert.True(expected.Distinct().Count() > Math.Min(rows, 5) / 2, "random rows should not all pick one token");
    }

    /// <summary>Wide rows (the vector loops with their four running maxima and the tails): NaNs anywhere, the maximum twice.</summary>
    [Theory]
    [InlineData(517)]
    [InlineData(512)]
    [InlineData(40)]
    [InlineData(9)]
    public void FoldFindsTheFirstLargestNonNaNInWideRows(int width)
    {
        var random = new Random(width);
        var values = Enumerable.Range(0, 2 * width).Select(_ => random.Next(10) == 0 ? float.NaN : (float)(random.NextDouble() * 10) - 20).ToArray();
        values[width - 1] = values[width - 4] = -1; // row 0: the largest at two places, near the end
        values[width + 3] = 7; // row 1: the largest near the start
        long* best = GreedyArgMax.Begin(2);
        fixed (float* block = values)
        {
            GreedyArgMax.Fold(block, 2, width, width, 0, best);
        }

        var tokens = new int[2];
        fixed (int* t = tokens)
        {
            GreedyArgMax.End(best, 2, t);
        }

        Assert.Equal([width - 4, 3], tokens);
    }

    [Fact]
    public void FoldKeepsTheLargestLogitAndTheLowestIdOnTies()
    {
        long* best = GreedyArgMax.Begin(3);
        // Row 0: 5 at id 103 (first block) and at id 21 (second block): 21 wins although folded last.
        // Row 1: only negative logits: -1 (id 102) beats -3. Row 2: NaNs are skipped, 2 at id 22 wins.
        float[] first = [0, 1, 2, 5, -3, -3, -1, -2, float.NaN, 1, float.NaN, float.NaN];
        float[] second = [4, 5, 0, -4, -4, -4, float.NaN, 1, 2];
        fixed (float* a = first, b = second)
        {
            GreedyArgMax.Fold(a, 3, 4, 4, 100, best);
            GreedyArgMax.Fold(b, 3, 3, 3, 20, best);
        }

        var tokens = new int[3];
        fixed (int* t = tokens)
        {
            GreedyArgMax.End(best, 3, t);
        }

        Assert.Equal([21, 102, 22], tokens);
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    public void GreedyGenerationWithoutLogitsPicksTheSameTokens(string name)
    {
        using var model = TestModels.Find(name).CreateRandom(9, TensorDType.F32);
        int[][] prompts = [[5], [7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8]];
        var options = new GenerationOptions { MaxNewTokens = 11, StopAtEos = false };
        var withLogits = TextGenerator.For(model).Generate(prompts, options);

        var fused = TextGenerator.For(model);
        fused.LogitsInCallback = false;
        var callbackLogits = new List<int>();
        var withoutLogits = fused.Generate(prompts, options, (_, _, logits) => callbackLogits.Add(logits.Length));

        for (var b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(withLogits[b].GeneratedIds, withoutLogits[b].GeneratedIds);
        }

        Assert.Equal(prompts.Length * 11, callbackLogits.Count);
        Assert.All(callbackLogits, length => Assert.Equal(0, length));
    }
}
