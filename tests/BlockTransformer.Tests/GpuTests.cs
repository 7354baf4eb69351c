using BlockTransformer.Gpu;
using BlockTransformer.Models;
using BlockTransformer.Runtime;
using ILGPU.Runtime;

namespace BlockTransformer.Tests;

/// <summary>
/// The generated ILGPU models on ILGPU's CPU simulator (32-wide warps × 2) against the generated CPU
/// models, which the reference tests already check: same tokens, logits within 1e-4 relative.
/// </summary>
[Collection(GpuSimulator.Collection)]
public sealed class GpuTests(GpuSimulator simulator)
{
    private static readonly int[][] RaggedPrompts = [[5, 17, 3, 58, 41, 9, 2], [60], [11, 12, 13, 14, 15]];

    [Theory]
    [InlineData("tiny_block", TokenPositions.Training)]
    [InlineData("tiny_block", TokenPositions.Reference)]
    [InlineData("tiny_block_gqa", TokenPositions.Training)]
    [InlineData("tiny_vanilla", TokenPositions.Training)]
    [InlineData("tiny_vanilla_mqa", TokenPositions.Training)]
    [InlineData("tiny_vanilla_vocab", TokenPositions.Training)] // 20 sampling chunks merged by 20 lanes; LM head inputs split 16 ways
    [InlineData("tiny_vanilla_kv_bf16", TokenPositions.Training)] // K and V cached as bf16, rounded as on the CPU
    [InlineData("tiny_block_kv_bf16", TokenPositions.Training)]
    public void GpuModelMatchesCpuModelOnRaggedBatch(string name, TokenPositions positions)
    {
        var options = new GenerationOptions { MaxNewTokens = 7, StopAtEos = false, TokenPositions = positions };
        var (cpuResults, cpuLogits) = RunCpu(name, options);
        var (gpuResults, gpuLogits) = RunGpu(name, options);

        for (var s = 0; s < RaggedPrompts.Length; s++)
        {
            Assert.Equal(cpuResults[s].GeneratedIds, gpuResults[s].GeneratedIds);
            Assert.Equal(cpuLogits[s].Count, gpuLogits[s].Count);
            for (var t = 0; t < cpuLogits[s].Count; t++)
            {
                AssertClose(cpuLogits[s][t], gpuLogits[s][t], $"{name} sequence {s} token {t}");
            }
        }
    }

    [Theory]
    [InlineData("tiny_block", 63)] // one row short of GpuModel.TiledMinRows: partial products over input slices
    [InlineData("tiny_block", 64)] // the tiled GEMM: one 64-row block; 36 inputs are two 16-input slices and a ragged one
    [InlineData("tiny_vanilla", 130)] // three row blocks, the last of 2 rows; 101 outputs end in a ragged block
    public void LinearLayersOfEitherKernelMatchTheCpuLmHead(string name, int rows)
    {
        using var cpu = TestModels.Find(name).CreateRandom(Seed, TensorDType.F32);
        var gpu = CreateGpu(name);
        var random = new Random(rows);
        var hidden = Enumerable.Range(0, rows * cpu.Info.Decoder.Hidden).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        var expected = new float[rows * cpu.Info.VocabSize];
        var actual = new float[expected.Length];
        cpu.LmHead(hidden, rows, expected);
        gpu.LmHead(hidden, rows, actual);
        for (var r = 0; r < rows; r++)
        {
            AssertClose(expected.AsSpan(r * cpu.Info.VocabSize, cpu.Info.VocabSize).ToArray(), actual.AsSpan(r * cpu.Info.VocabSize, cpu.Info.VocabSize).ToArray(), $"{name} row {r}");
        }
    }

    [Fact]
    public void GreedyPickIsTheLowestIdOfTheLargestLogitSkippingNaN()
    {
        var model = CreateGpu("tiny_vanilla_vocab"); // 5003 ids: 20 chunks of 256, the last of 139
        var vocab = model.Info.VocabSize;
        var random = new Random(5);
        var rows = new float[6][];
        for (var r = 0; r < rows.Length; r++)
        {
            rows[r] = Enumerable.Range(0, vocab).Select(_ => (float)random.NextDouble()).ToArray();
        }

        rows[0][4000] = rows[0][300] = 7f; // equal maxima in different chunks
        rows[1][517] = rows[1][513] = 7f; // in one chunk, read by different lanes (517 % 32 = 5, 513 % 32 = 1)
        rows[2][5002] = 7f; // the last id, in the ragged last chunk
        Array.Fill(rows[3], float.NaN, 0, 1000);
        rows[3][1500] = 7f; // NaN before the maximum is skipped, not taken
        Array.Fill(rows[4], float.NaN);
        Array.Fill(rows[5], float.NegativeInfinity);
        rows[5][4999] = float.NaN;

        using var logits = simulator.Device.Allocate<float>((long)rows.Length * vocab, "test logits");
        using var tokens = simulator.Device.Allocate<int>(rows.Length, "test tokens");
        using var scratch = new GpuScratch(simulator.Device);
        logits.View.CopyFromCPU(rows.SelectMany(row => row).ToArray());
        model.Sample(logits.View, rows.Length, DeviceSampling.From(new SamplingOptions(), draw: 0), tokens.View, scratch);
        var picked = new int[rows.Length];
        tokens.View.CopyToCPU(picked);

        // The CPU's rule, spelled out: the first id of the largest non-NaN logit, 0 when every logit is NaN.
        var expected = rows.Select(row => row.Any(v => !float.IsNaN(v)) ? Array.IndexOf(row, row.Where(v => !float.IsNaN(v)).Max()) : 0).ToArray();
        Assert.Equal([300, 513, 5002, 1500, 0, 0], expected);
        Assert.Equal(expected, rows.Select(row => Sampler.ArgMax(row)).ToArray());
        Assert.Equal(expected, picked);
    }

    [Fact]
    public void LongAttentionMergesChunksAsTheCpuAttendsTheWholeContext()
    {
        var options = new GenerationOptions { MaxNewTokens = 5, StopAtEos = false };
        int[][] prompts = [Enumerable.Range(0, 150).Select(i => 1 + (i * 7 % 60)).ToArray(), [3, 4]];
        var (expected, expectedLogits) = RunCpu("tiny_vanilla_long", options, prompts);
        var (actual, logits) = RunGpu("tiny_vanilla_long", options, prompts);
        for (var s = 0; s < prompts.Length; s++)
        {
            Assert.Equal(expected[s].GeneratedIds, actual[s].GeneratedIds);
            for (var t = 0; t < logits[s].Count; t++)
            {
                AssertClose(expectedLogits[s][t], logits[s][t], $"sequence {s} token {t}");
            }
        }
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    [InlineData("tiny_vanilla_vocab")]
    public void DeviceTopKSamplingPicksWhatTheCpuSamplerPicks(string name)
    {
        var options = new GenerationOptions
        {
            MaxNewTokens = 6,
            StopAtEos = false,
            Sampling = new SamplingOptions { Greedy = false, Temperature = 1.5f, TopK = 20, Seed = 12345 },
        };
        var (cpuResults, _) = RunCpu(name, options);
        var (gpuResults, _) = RunGpu(name, options);
        for (var s = 0; s < RaggedPrompts.Length; s++)
        {
            Assert.Equal(cpuResults[s].GeneratedIds, gpuResults[s].GeneratedIds);
        }

        // A different seed must change something, or the test would pass with the seed ignored.
        var (reseeded, _) = RunGpu(name, options with { Sampling = options.Sampling with { Seed = 999 } });
        Assert.NotEqual(gpuResults.SelectMany(r => r.GeneratedIds), reseeded.SelectMany(r => r.GeneratedIds));
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    public void EosStopsOnlyItsOwnSequenceAsOnTheCpu(string name)
    {
        // Search on the CPU model for a prompt whose greedy continuation hits EOS before the end.
        var (seed, prompt, _) = TestModels.FindEosContinuation(TestModels.Find(name), firstSeed: Seed, index => index < 10);
        using var cpu = TestModels.Find(name).CreateRandom(seed, TensorDType.F32);
        var eos = cpu.Info.EosId;
        int[][] prompts = [prompt, [9, 10, 11]];
        var options = new GenerationOptions { MaxNewTokens = 12 };

        var expected = TextGenerator.For(cpu).Generate(prompts, options);
        var actual = GpuTextGenerator.For(CreateGpu(name, seed)).Generate(prompts, options);
        Assert.True(actual[0].StoppedAtEos);
        Assert.Equal(eos, actual[0].GeneratedIds[^1]);
        for (var s = 0; s < prompts.Length; s++)
        {
            Assert.Equal(expected[s].GeneratedIds, actual[s].GeneratedIds);
            Assert.Equal(expected[s].StoppedAtEos, actual[s].StoppedAtEos);
        }
    }

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    public void CancellationStopsAtTheNextTokenAsOnTheCpu(string name) =>
        TestModels.AssertCancelsAtTheNextToken(GpuTextGenerator.For(CreateGpu(name)), RaggedPrompts, after: 5);

    [Fact]
    public void UnsupportedSamplingIsRefusedWithTheReason()
    {
        var model = CreateGpu("tiny_vanilla");
        var generator = GpuTextGenerator.For(model);
        var topP = Assert.Throws<GpuException>(() => generator.Generate(RaggedPrompts, new GenerationOptions
        {
            Sampling = new SamplingOptions { Greedy = false, TopK = 5, TopP = 0.9f },
        }));
        Assert.Contains("top-p", topP.Message);
        var noTopK = Assert.Throws<GpuException>(() => generator.Generate(RaggedPrompts, new GenerationOptions
        {
            Sampling = new SamplingOptions { Greedy = false },
        }));
        Assert.Contains("top-k from 1 to 64", noTopK.Message);
    }

    [Theory]
    [InlineData("tiny_block", 32768)] // R = 2 prefix rows per sequence: 65536 rows
    [InlineData("tiny_vanilla", 65536)]
    public void BatchBeyondTheGridLimitIsRefusedBeforeAnythingRuns(string name, int batch)
    {
        var generator = GpuTextGenerator.For(CreateGpu(name));
        var prompts = Enumerable.Repeat(new[] { 5 }, batch).ToArray();
        var error = Assert.Throws<GpuException>(() => generator.Generate(prompts, new GenerationOptions { MaxNewTokens = 1 }));
        Assert.Contains($"batch {batch} is too large for the GPU kernels", error.Message);
        Assert.Contains($"so at most {batch - 1} sequences per call", error.Message); // 65535 rows
    }

    [Fact]
    public void CacheThatDoesNotFitIsRefusedWithBytesNeededAndAvailable()
    {
        var model = CreateGpu("tiny_block");
        var error = Assert.Throws<GpuException>(() => new GpuKvCache(model.Device, 1000, 1 << 20, 1 << 10, 1 << 10, bf16: false, "block decoder"));
        Assert.Contains("block decoder KV cache", error.Message);
        Assert.Contains("needs 8192000.00 GiB", error.Message);
        Assert.Contains("available", error.Message);
        var halved = Assert.Throws<GpuException>(() => new GpuKvCache(model.Device, 1000, 1 << 20, 1 << 10, 1 << 10, bf16: true, "block decoder"));
        Assert.Contains("needs 4096000.00 GiB", halved.Message);
    }

    private static (GenerationResult[] Results, List<float[]>[] Logits) RunCpu(string name, GenerationOptions options, int[][]? prompts = null)
    {
        using var model = TestModels.Find(name).CreateRandom(Seed, TensorDType.F32);
        return TestModels.Run(model, prompts ?? RaggedPrompts, options);
    }

    private (GenerationResult[] Results, List<float[]>[] Logits) RunGpu(string name, GenerationOptions options, int[][]? prompts = null)
    {
        prompts ??= RaggedPrompts;
        var logits = prompts.Select(_ => new List<float[]>()).ToArray();
        var results = GpuTextGenerator.For(CreateGpu(name), copyLogits: true)
            .Generate(prompts, options, (sequence, _, scores) => logits[sequence].Add(scores.ToArray()));
        return (results, logits);
    }

    private GpuModel CreateGpu(string name, ulong seed = Seed) => simulator.Model($"{name} seed {seed}", () =>
        CompiledGpuModels.All.Single(m => m.Info.Name == name).CreateRandom(simulator.Device, seed, TensorDType.F32));

    private const ulong Seed = 21;

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = Math.Max(1f, expected.Max(Math.Abs));
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4f * scale, $"{what}: logit {i} is {actual[i]} on the GPU, {expected[i]} on the CPU");
        }
    }
}

/// <summary>One CPU-simulator device and its loaded models for all GPU tests (kernel compilation is slow).</summary>
public sealed class GpuSimulator : IDisposable
{
    public const string Collection = "gpu simulator";

    private readonly Dictionary<string, GpuModel> models = [];

    public GpuDevice Device { get; } = GpuDevice.Open(GpuDeviceKind.CpuSimulator);

    /// <summary>The model <paramref name="key"/> names (model name and weight seed), created on first use.</summary>
    public GpuModel Model(string key, Func<GpuModel> create)
    {
        lock (models)
        {
            if (!models.TryGetValue(key, out var model))
            {
                models[key] = model = create();
            }

            return model;
        }
    }

    public void Dispose()
    {
        foreach (var model in models.Values)
        {
            model.Dispose();
        }

        Device.Dispose();
    }
}

[CollectionDefinition(GpuSimulator.Collection)]
public sealed class GpuSimulatorCollection : ICollectionFixture<GpuSimulator>;
