using BenchmarkDotNet.Attributes;
using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;

namespace BlockTransformer.Benchmarks;

/// <summary>One linear layer of a model: its generated kernel is Linear{Outputs}x{Inputs}[Gelu].</summary>
public sealed record LinearCase(string Model, string Layer, int Outputs, int Inputs, bool Gelu, bool Accumulate, bool Bias, int Rows) : IWorkload
{
    public string Kernel => $"Linear{Outputs}x{Inputs}" + (Gelu ? "Gelu" : "");

    /// <summary>2 FLOPs per weight per row; every weight is read once per call, whatever the rows.</summary>
    public Work For(string benchmarkMethod) => new(2.0 * Rows * Outputs * Inputs, 4.0 * Outputs * Inputs);

    public override string ToString() => $"{Model} {Layer} {Outputs}x{Inputs} ×{Rows}";
}

/// <summary>
/// The matrix kernel family at every linear shape of each model (the QKV, attention-output, MLP up with
/// its fused GELU and MLP down projections of each decoder stack, the expansion layer and the LM head),
/// for 1 row (decode at batch 1: bandwidth-bound), 64 rows (GEMM-shaped batch) and, for the decoder
/// layers, 2048 rows (a prompt's prefill), against the tests' plain double-precision Linear (and GELU)
/// as the baseline. A shape both decoder stacks share runs once, under the block decoder's name.
/// </summary>
[Config(typeof(WorkloadConfig))]
[MemoryDiagnoser]
public unsafe class LinearBenchmarks
{
    private static readonly int[] DecodeRows = [1, 64];
    private static readonly int[] DecodeAndPrefillRows = [1, 64, 2048];

    private LinearKernel? linear;
    private GeluLinearKernel? geluLinear;
    private AlignedBuffer x = null!, w = null!, b = null!, y = null!;
    private float[] weights = [];
    private float[] bias = [];
    private double[][] inputs = [];

    [ParamsSource(nameof(Cases))]
    public LinearCase Case { get; set; } = null!;

    public static IEnumerable<LinearCase> Cases() =>
        from info in BenchmarkModels.Selected()
        from layer in Layers(info).DistinctBy(l => l.Case.Kernel)
        from rows in layer.Prefill ? DecodeAndPrefillRows : DecodeRows
        select layer.Case with { Rows = rows };

    [GlobalSetup]
    public void Setup()
    {
        var model = GeneratedKernels.ModelType(Case.Model);
        if (Case.Gelu)
        {
            geluLinear = GeneratedKernels.Bind<GeluLinearKernel>(model, Case.Kernel);
        }
        else
        {
            linear = GeneratedKernels.Bind<LinearKernel>(model, Case.Kernel);
        }

        weights = BenchmarkModels.RandomRows(Case.Outputs, Case.Inputs, 1);
        bias = BenchmarkModels.RandomRows(1, Case.Outputs, 2);
        x = BenchmarkModels.RandomInputs(Case.Rows, Case.Inputs, 3, out inputs);
        w = Packing.ToPanels(BenchmarkModels.Aligned(weights), Case.Outputs, Case.Inputs);
        b = BenchmarkModels.Aligned(bias);
        y = new AlignedBuffer((long)Case.Rows * Case.Outputs);
    }

    [GlobalCleanup]
    public void Cleanup() => BenchmarkModels.DisposeAll(x, w, b, y);

    [Benchmark(Description = "generated")]
    public void Generated()
    {
        var biasPointer = Case.Bias ? b.Pointer : null;
        if (geluLinear is not null)
        {
            geluLinear(x.Pointer, Case.Rows, w.Pointer, biasPointer, y.Pointer);
        }
        else
        {
            linear!(x.Pointer, Case.Rows, w.Pointer, biasPointer, y.Pointer, Case.Accumulate);
        }
    }

    [Benchmark(Baseline = true, Description = "plain reference")]
    public double[][] Reference() => inputs.Select(row =>
    {
        var output = ReferenceMath.Linear(row, weights, Case.Bias ? bias : null, Case.Outputs);
        return Case.Gelu ? output.Select(ReferenceMath.Gelu).ToArray() : output;
    }).ToArray();

    /// <summary>
    /// Each linear layer as the generated decoders call it (dense and down add into the residual), and
    /// whether a 2048-token prefill runs it over 2048 rows (the LM head and the expansion see one row per
    /// sequence).
    /// </summary>
    private static IEnumerable<(LinearCase Case, bool Prefill)> Layers(ModelInfo info)
    {
        foreach (var (part, s) in BenchmarkModels.Decoders(info))
        {
            var qkvWidth = (s.Heads + (2 * s.KvHeads)) * s.HeadDim;
            yield return (new(info.Name, $"{part}.qkv", qkvWidth, s.Hidden, Gelu: false, Accumulate: false, Bias: true, Rows: 0), true);
            yield return (new(info.Name, $"{part}.dense", s.Hidden, s.Heads * s.HeadDim, Gelu: false, Accumulate: true, Bias: true, Rows: 0), true);
            yield return (new(info.Name, $"{part}.up", s.Intermediate, s.Hidden, Gelu: true, Accumulate: false, Bias: true, Rows: 0), true);
            yield return (new(info.Name, $"{part}.down", s.Hidden, s.Intermediate, Gelu: false, Accumulate: true, Bias: true, Rows: 0), true);
        }

        if (info.Kind == ModelKind.Block)
        {
            yield return (new(info.Name, "expansion", info.PrefixLength * info.Decoder.Hidden, info.BlockDecoder!.Hidden, Gelu: false, Accumulate: false, Bias: true, Rows: 0), false);
        }

        yield return (new(info.Name, "lm_head", info.VocabSize, info.Decoder.Hidden, Gelu: false, Accumulate: false, Bias: false, Rows: 0), false);
    }
}
