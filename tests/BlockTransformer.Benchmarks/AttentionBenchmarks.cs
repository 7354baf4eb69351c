using BenchmarkDotNet.Attributes;
using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;

namespace BlockTransformer.Benchmarks;

/// <summary>
/// One decode step of one attention layer: <see cref="Rows"/> sequences, each adding its position
/// <see cref="Context"/> − 1 and attending to all <see cref="Context"/> cached positions. Its generated
/// kernel is {Part}Attention (RoPE, K/V into the cache, then softmax(q·Kᵀ/√d_h)·V per head).
/// </summary>
public sealed record AttentionCase(string Model, string Part, DecoderShape Shape, int Context, int Rows) : IWorkload
{
    public string Kernel => $"{Part}Attention";

    /// <summary>q·k and p·v: 4 FLOPs per (query head, position, dim); each sequence's K and V are read once.</summary>
    public Work For(string benchmarkMethod) => new(
        4.0 * Rows * Context * Shape.Heads * Shape.HeadDim,
        2.0 * Rows * Context * Shape.KvDim * sizeof(float));

    public override string ToString() => $"{Model} {Part} {Context} positions ×{Rows}";
}

/// <summary>
/// The attention family, the two problems the issue separates: the token decoder's short attention
/// (R + L_B − 1 positions) and the long attention of the block decoder (2048 tokens = 2048 / L_B block
/// positions) and of the vanilla decoder (2048 positions); at batch 1 and 64, against the tests' plain
/// attention (per query head: scores, softmax, weighted sum of values) as the baseline.
/// </summary>
[Config(typeof(WorkloadConfig))]
[MemoryDiagnoser]
public unsafe class AttentionBenchmarks
{
    private const int PromptTokens = 2048;
    private static readonly int[] RowCounts = [1, 64];

    private ILanguageModel model = null!;
    private AttentionKernel kernel = null!;
    private KvCache cache = null!;
    private readonly DecoderRows rows = new();
    private AlignedBuffer qkv = null!, output = null!;
    private double[][][] queries = [];
    private double[][][][] keys = [], values = [];

    [ParamsSource(nameof(Cases))]
    public AttentionCase Case { get; set; } = null!;

    public static IEnumerable<AttentionCase> Cases() =>
        from info in BenchmarkModels.Selected()
        from decoder in BenchmarkModels.Decoders(info)
        let context = decoder.Part == "Block" ? PromptTokens / info.BlockLength : Math.Min(PromptTokens, decoder.Shape.MaxContext)
        from batch in RowCounts
        select new AttentionCase(info.Name, decoder.Part, decoder.Shape, context, batch);

    [GlobalSetup]
    public void Setup()
    {
        var s = Case.Shape;
        model = BenchmarkModels.Find(Case.Model).CreateRandom(1, TensorDType.F32);
        kernel = GeneratedKernels.Bind<AttentionKernel>(model.GetType(), Case.Kernel, model);
        var bf16 = model.Info.Bf16KvCache;
        cache = new KvCache(Case.Rows, 1, Case.Context, s.KvHeads, s.HeadDim, bf16);
        var random = new Random(5);
        var elements = checked((int)(KvCache.BytesFor(Case.Rows, 1, Case.Context, s.KvDim, bf16) / cache.ElementBytes));
        for (var i = 0; i < elements; i++)
        {
            var value = (float)((random.NextDouble() * 2) - 1);
            if (bf16)
            {
                cache.Keys<ushort>(0, 0, 0)[i] = TensorDTypes.ToBFloat16(value);
            }
            else
            {
                cache.Keys<float>(0, 0, 0)[i] = value;
            }
        }

        rows.Clear();
        for (var sequence = 0; sequence < Case.Rows; sequence++)
        {
            rows.Add(sequence, Case.Context - 1, Case.Context - 1);
        }

        var qkvWidth = (s.Heads + (2 * s.KvHeads)) * s.HeadDim;
        qkv = BenchmarkModels.Aligned(BenchmarkModels.RandomRows(Case.Rows, qkvWidth, 6));
        output = new AlignedBuffer((long)Case.Rows * s.Heads * s.HeadDim);

        // The baseline's own copies: per sequence, each query head's q and each K/V head's cached rows.
        double[] Vector(int length) => Enumerable.Range(0, length).Select(_ => (random.NextDouble() * 2) - 1).ToArray();
        double[][] Cached() => Enumerable.Range(0, Case.Context).Select(_ => Vector(s.HeadDim)).ToArray();
        queries = Enumerable.Range(0, Case.Rows).Select(_ => Enumerable.Range(0, s.Heads).Select(_ => Vector(s.HeadDim)).ToArray()).ToArray();
        keys = Enumerable.Range(0, Case.Rows).Select(_ => Enumerable.Range(0, s.KvHeads).Select(_ => Cached()).ToArray()).ToArray();
        values = Enumerable.Range(0, Case.Rows).Select(_ => Enumerable.Range(0, s.KvHeads).Select(_ => Cached()).ToArray()).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        cache.Dispose();
        BenchmarkModels.DisposeAll(qkv, output);
        model.Dispose();
    }

    [Benchmark(Description = "generated")]
    public void Generated() => kernel(qkv.Pointer, rows, cache, 0, output.Pointer);

    [Benchmark(Baseline = true, Description = "plain reference")]
    public double[][][] Reference()
    {
        var group = Case.Shape.Heads / Case.Shape.KvHeads;
        return queries.Select((heads, sequence) => heads.Select((q, h) =>
            ReferenceMath.Attention(q, keys[sequence][h / group], values[sequence][h / group])).ToArray()).ToArray();
    }
}
