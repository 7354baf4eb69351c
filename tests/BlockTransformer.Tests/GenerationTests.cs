using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;

namespace BlockTransformer.Tests;

/// <summary>Generated models against the plain reference, on random weights written to real files.</summary>
public class GenerationTests
{
    /// <summary>Logits agree when max|generated − reference| ≤ 1e-4 · max(1, max|reference|).</summary>
    private const double RelativeTolerance = 1e-4;

    private static readonly int[][] RaggedPrompts = [[5], [7, 8, 9, 10, 11], [1, 2, 3, 4, 5, 6, 7, 8], [20, 21, 22]];

    [Theory]
    [InlineData("tiny_block", TensorDType.F32, TokenPositions.Training)]
    [InlineData("tiny_block", TensorDType.BF16, TokenPositions.Reference)]
    [InlineData("tiny_block_gqa", TensorDType.BF16, TokenPositions.Training)]
    [InlineData("tiny_block_gqa", TensorDType.F16, TokenPositions.Reference)]
    [InlineData("tiny_block_bf16", TensorDType.BF16, TokenPositions.Training)]
    [InlineData("tiny_vanilla", TensorDType.F32, TokenPositions.Training)]
    [InlineData("tiny_vanilla_mqa", TensorDType.BF16, TokenPositions.Training)]
    [InlineData("tiny_vanilla_kv_bf16", TensorDType.F32, TokenPositions.Training)]
    [InlineData("tiny_block_kv_bf16", TensorDType.BF16, TokenPositions.Training)]
    public void GeneratedModelMatchesReferenceOnRaggedBatch(string name, TensorDType dtype, TokenPositions positions)
    {
        var descriptor = TestModels.Find(name);
        var path = TestModels.WriteWeights(descriptor, dtype);
        using var model = descriptor.Load(path);
        var options = new GenerationOptions { MaxNewTokens = 10, TokenPositions = positions };
        var (results, logits) = TestModels.Run(model, RaggedPrompts, options);

        var tensors = ReferenceModels.ReadAll(path);
        for (var b = 0; b < RaggedPrompts.Length; b++)
        {
            var expected = descriptor.Info.Kind == ModelKind.Block
                ? new ReferenceBlockModel(descriptor.Info, tensors).Generate(RaggedPrompts[b], 10, positions == TokenPositions.Training)
                : new ReferenceVanillaModel(descriptor.Info, tensors).Generate(RaggedPrompts[b], 10);
            Assert.Equal(expected.Ids, results[b].GeneratedIds);
            Assert.Equal(expected.StoppedAtEos, results[b].StoppedAtEos);
            for (var step = 0; step < expected.Logits.Count; step++)
            {
                AssertClose(expected.Logits[step], logits[b][step], $"prompt {b}, token {step}");
            }
        }
    }

    /// <summary>
    /// Prompts long enough that attention scores run as tiles of 12, 8 and 4 query rows against pairs of
    /// key blocks (contexts past 32 positions), in every layer but the last too, where only the last row
    /// reaches the logits; a prompt's rows are attended 16 at a time, so lengths not a multiple of 16
    /// leave partial groups. tiny_vanilla_wide's FFN spans several chunks of panel pairs, each finished by
    /// the fused GELU on its own; tiny_vanilla_rowblocks' packed FFN down-projection spans two row blocks
    /// of several chunks each, claimed by both threads. The _kv_bf16 models read bf16 key and value blocks in
    /// those tiles.
    /// </summary>
    [Theory]
    [InlineData("tiny_vanilla_long", 150)]
    [InlineData("tiny_block", 171)]
    [InlineData("tiny_vanilla_wide", 40)]
    [InlineData("tiny_vanilla_rowblocks", 600)]
    [InlineData("tiny_vanilla_kv_bf16", 150)]
    [InlineData("tiny_block_kv_bf16", 171)]
    public void LongPromptsMatchReference(string name, int length)
    {
        var descriptor = TestModels.Find(name);
        var path = TestModels.WriteWeights(descriptor, TensorDType.F32);
        using var model = descriptor.Load(path);
        int[][] prompts = [Enumerable.Range(0, length).Select(i => 1 + (i * 7 % 50)).ToArray()];
        var options = new GenerationOptions { MaxNewTokens = 3, StopAtEos = false };
        var (results, logits) = TestModels.Run(model, prompts, options);

        var tensors = ReferenceModels.ReadAll(path);
        var expected = descriptor.Info.Kind == ModelKind.Block
            ? new ReferenceBlockModel(descriptor.Info, tensors).Generate(prompts[0], 3, trainingPositions: true, stopAtEos: false)
            : new ReferenceVanillaModel(descriptor.Info, tensors).Generate(prompts[0], 3, stopAtEos: false);
        Assert.Equal(expected.Ids, results[0].GeneratedIds);
        for (var step = 0; step < expected.Logits.Count; step++)
        {
            AssertClose(expected.Logits[step], logits[0][step], $"token {step}");
        }
    }

    /// <summary>
    /// A 65536-position model generates on a thread with a 1 MiB stack, like a thread-pool thread's (1.5 MiB
    /// on Linux), which runs its share of every kernel: attention's 4 MiB score tile must not be on the stack.
    /// </summary>
    [Fact]
    public void LongContextModelGeneratesOnASmallStack()
    {
        var descriptor = TestModels.Find("tiny_vanilla_context");
        var path = TestModels.WriteWeights(descriptor, TensorDType.F32);
        int[][] prompts = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3]];
        var options = new GenerationOptions { MaxNewTokens = 4, StopAtEos = false };
        var run = (Results: Array.Empty<GenerationResult>(), Logits: Array.Empty<List<float[]>>());
        Exception? failure = null;
        var thread = new Thread(
            () =>
            {
                try
                {
                    using var model = descriptor.Load(path);
                    run = TestModels.Run(model, prompts, options);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            },
            maxStackSize: 1 << 20);
        thread.Start();
        thread.Join();

        Assert.Null(failure);
        var expected = new ReferenceVanillaModel(descriptor.Info, ReferenceModels.ReadAll(path)).Generate(prompts[0], 4, stopAtEos: false);
        Assert.Equal(expected.Ids, run.Results[0].GeneratedIds);
        for (var step = 0; step < expected.Logits.Count; step++)
        {
            AssertClose(expected.Logits[step], run.Logits[0][step], $"token {step}");
        }
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    public void BatchedSequencesEqualTheSameSequencesAlone(string name)
    {
        using var model = TestModels.Find(name).CreateRandom(3, TensorDType.F32);
        var options = new GenerationOptions { MaxNewTokens = 9, StopAtEos = false };
        var batched = TextGenerator.For(model).Generate(RaggedPrompts, options);
        for (var b = 0; b < RaggedPrompts.Length; b++)
        {
            var alone = TextGenerator.For(model).Generate([RaggedPrompts[b]], options)[0];
            Assert.Equal(alone.GeneratedIds, batched[b].GeneratedIds);
        }
    }

    [Theory]
    [InlineData("tiny_block", 5)]
    [InlineData("tiny_block", 4)]
    [InlineData("tiny_vanilla", 3)]
    [InlineData("tiny_vanilla", 1)]
    public void CancellationStopsAtTheNextToken(string name, int after)
    {
        using var model = TestModels.Find(name).CreateRandom(9, TensorDType.F32);
        TestModels.AssertCancelsAtTheNextToken(TextGenerator.For(model), RaggedPrompts, after);
    }

    [Theory]
    [InlineData("tiny_block", 10)]
    [InlineData("tiny_block_gqa", 7)]
    [InlineData("tiny_vanilla", 3)]
    public void MaxNewTokensIsExactEvenWhenNotAMultipleOfTheBlockLength(string name, int maxNew)
    {
        using var model = TestModels.Find(name).CreateRandom(11, TensorDType.F32);
        var results = TextGenerator.For(model).Generate(RaggedPrompts, new GenerationOptions { MaxNewTokens = maxNew, StopAtEos = false });
        Assert.All(results, r => Assert.Equal(maxNew, r.GeneratedIds.Count));
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_block_gqa")]
    public void OneTokenPromptIsLeftPaddedWithThePadIdToAWholeBlock(string name)
    {
        var descriptor = TestModels.Find(name);
        using var model = descriptor.CreateRandom(5, TensorDType.F32);
        var options = new GenerationOptions { MaxNewTokens = 8, StopAtEos = false };
        var padded = Enumerable.Repeat(descriptor.Info.PadId, descriptor.Info.BlockLength - 1).Append(42).ToArray();
        var (oneToken, oneTokenLogits) = TestModels.Run(model, [[42]], options);
        var (explicitPad, explicitLogits) = TestModels.Run(model, [padded], options);
        Assert.Equal(explicitPad[0].GeneratedIds, oneToken[0].GeneratedIds);
        Assert.Equal(explicitLogits[0][0], oneTokenLogits[0][0]);
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    public void EosStopsOnlyItsOwnSequenceAndEndsItsOutput(string name)
    {
        var descriptor = TestModels.Find(name);
        var eos = descriptor.Info.EosId;
        var lb = descriptor.Info.BlockLength;
        var noStop = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false };

        // A prompt whose greedy continuation hits EOS in the middle of a block (not its last token).
        var (seed, prompt, eosAt) = TestModels.FindEosContinuation(descriptor, firstSeed: 21, index => index < 10 && (lb == 1 || index % lb != lb - 1));
        var path = TestModels.WriteWeights(descriptor, TensorDType.F32, seed);
        using var model = descriptor.Load(path);
        var other = new[] { 9, 10, 11 };
        var otherAlone = TextGenerator.For(model).Generate([other], noStop)[0];
        Assert.DoesNotContain(eos, otherAlone.GeneratedIds.Take(12));
        var results = TextGenerator.For(model).Generate([prompt, other], new GenerationOptions { MaxNewTokens = 12 });

        var full = TextGenerator.For(model).Generate([prompt], noStop)[0].GeneratedIds;
        Assert.True(results[0].StoppedAtEos);
        Assert.Equal(full.Take(eosAt + 1), results[0].GeneratedIds);
        Assert.False(results[1].StoppedAtEos);
        Assert.Equal(otherAlone.GeneratedIds, results[1].GeneratedIds);

        var tensors = ReferenceModels.ReadAll(path);
        var reference = descriptor.Info.Kind == ModelKind.Block
            ? new ReferenceBlockModel(descriptor.Info, tensors).Generate(prompt, 12, trainingPositions: true)
            : new ReferenceVanillaModel(descriptor.Info, tensors).Generate(prompt, 12);
        Assert.Equal(reference.Ids, results[0].GeneratedIds);
    }

    /// <summary>A decode step (decoder call for a batch, then the LM head, plain or greedy) allocates nothing on the GC heap.</summary>
    [Fact]
    public void DecodeStepAllocatesNothing()
    {
        using var model = BlockTransformer.Models.BlockMainB4_5Model.CreateRandom(1);
        const int batch = 8;
        using var cache = new KvCache(batch, BlockTransformer.Models.BlockMainB4_5Model.TokenLayers, 5, 8, 32, bf16: false);
        using var scratch = new Scratch();
        var rows = new DecoderRows();
        for (var b = 0; b < batch; b++)
        {
            rows.Add(b, 2, 2);
        }

        var hidden = new float[batch * 256];
        var logits = new float[batch * 50304];
        var tokens = new int[batch];
        void Step()
        {
            model.TokenDecoder(hidden, rows, cache, scratch);
            model.LmHead(hidden, batch, logits);
            model.LmHeadArgMax(hidden, batch, tokens);
        }

        Step(); // scratch buffers and worker threads are created once
        // Per-thread count: xunit runs other test classes in parallel in this process.
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            Step();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void PromptLongerThanTheContextIsRefusedWithTheLimit()
    {
        using var model = TestModels.Find("tiny_vanilla").CreateRandom(1, TensorDType.F32);
        var error = Assert.Throws<ArgumentException>(() =>
            TextGenerator.For(model).Generate([Enumerable.Range(0, 60).ToArray()], new GenerationOptions { MaxNewTokens = 10 }));
        Assert.Contains("max_context 64", error.Message);
    }

    [Fact]
    public void BadPromptsAreRefusedWithTheirIndex()
    {
        using var model = TestModels.Find("tiny_block").CreateRandom(1, TensorDType.F32);
        var generator = TextGenerator.For(model);
        Assert.Contains("prompt 1 is empty", Assert.Throws<ArgumentException>(() => generator.Generate([[1], []], new GenerationOptions())).Message);
        Assert.Contains("token id 97", Assert.Throws<ArgumentException>(() => generator.Generate([[1, 97]], new GenerationOptions())).Message);
    }

    internal static void AssertClose(double[] expected, float[] actual, string where)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = Math.Max(1, expected.Max(Math.Abs));
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= RelativeTolerance * scale, $"{where}: max |Δlogit| {worst:E3} exceeds {RelativeTolerance:E0} × {scale:F3}");
    }
}
