using BenchmarkDotNet.Attributes;
using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;

namespace BlockTransformer.Benchmarks;

/// <summary>LayerNorm over rows of one decoder's width: its generated kernel is LayerNorm{Width}.</summary>
public sealed record LayerNormCase(string Model, string Part, int Width, float Eps, int Rows) : IWorkload
{
    public string Kernel => $"LayerNorm{Width}";

    /// <summary>Reads each input twice (statistics, then normalize) and writes each output once; ~8 FLOPs per value.</summary>
    public Work For(string benchmarkMethod) => new(8.0 * Rows * Width, 3.0 * Rows * Width * sizeof(float));

    public override string ToString() => $"{Model} {Part} {Width} ×{Rows}";
}

/// <summary>
/// The normalization family: LayerNorm at each decoder width for a decode step (1 and 64 rows) and a
/// 2048-row prefill, against the tests' plain LayerNorm as the baseline.
/// </summary>
[Config(typeof(WorkloadConfig))]
[MemoryDiagnoser]
public unsafe class LayerNormBenchmarks
{
    private static readonly int[] RowCounts = [1, 64, 2048];

    private LayerNormKernel kernel = null!;
    private AlignedBuffer x = null!, weight = null!, bias = null!, y = null!;
    private float[] weights = [];
    private float[] biases = [];
    private double[][] inputs = [];

    [ParamsSource(nameof(Cases))]
    public LayerNormCase Case { get; set; } = null!;

    public static IEnumerable<LayerNormCase> Cases() =>
        from info in BenchmarkModels.Selected()
        from decoder in BenchmarkModels.Decoders(info).DistinctBy(d => d.Shape.Hidden)
        from rows in RowCounts
        select new LayerNormCase(info.Name, decoder.Part, decoder.Shape.Hidden, (float)decoder.Shape.LayerNormEps, rows);

    [GlobalSetup]
    public void Setup()
    {
        kernel = GeneratedKernels.Bind<LayerNormKernel>(GeneratedKernels.ModelType(Case.Model), Case.Kernel);
        weights = BenchmarkModels.RandomRows(1, Case.Width, 1);
        biases = BenchmarkModels.RandomRows(1, Case.Width, 2);
        x = BenchmarkModels.RandomInputs(Case.Rows, Case.Width, 3, out inputs);
        weight = BenchmarkModels.Aligned(weights);
        bias = BenchmarkModels.Aligned(biases);
        y = new AlignedBuffer((long)Case.Rows * Case.Width);
    }

    [GlobalCleanup]
    public void Cleanup() => BenchmarkModels.DisposeAll(x, weight, bias, y);

    [Benchmark(Description = "generated")]
    public void Generated() => kernel(x.Pointer, Case.Rows, weight.Pointer, bias.Pointer, y.Pointer, Case.Eps);

    [Benchmark(Baseline = true, Description = "plain reference")]
    public double[][] Reference() => inputs.Select(row => ReferenceMath.LayerNorm(row, weights, biases, Case.Eps)).ToArray();
}
