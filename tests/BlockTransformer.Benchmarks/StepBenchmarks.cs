using BenchmarkDotNet.Attributes;
using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;

namespace BlockTransformer.Benchmarks;

/// <summary>A model's token-producing decoder at a batch: its KV cache holds <see cref="Capacity"/> positions.</summary>
public sealed record StepCase(string Model, int Batch) : IWorkload
{
    private const int Context = 64;

    private ModelInfo Info => BenchmarkModels.Find(Model).Info;

    /// <summary>A block model's token decoder sees R + L_B − 1 positions; a vanilla decoder gets a context of 64.</summary>
    public int Capacity => Info.Kind == ModelKind.Block ? Info.PrefixLength + Info.BlockLength - 1 : Context + 1;

    public int PrefillLength => Math.Min(Capacity, Context);

    /// <summary>The cost model's count for the call: every weight once, each row's cached positions once.</summary>
    public Work For(string benchmarkMethod)
    {
        var cost = benchmarkMethod == nameof(StepBenchmarks.DecodeStep)
            ? CostModel.Decoder(Info, Info.Decoder, Batch, (long)Batch * Capacity, (long)Batch * Capacity, Unbounded)
            : CostModel.Decoder(Info, Info.Decoder, PrefillLength, (long)PrefillLength * (PrefillLength + 1) / 2, PrefillLength, Unbounded);
        return new Work(cost.Flops, cost.Bytes);
    }

    public override string ToString() => $"{Model} ×{Batch}";

    private static readonly MachinePeaks Unbounded = new(double.PositiveInfinity, double.PositiveInfinity);
}

/// <summary>
/// One decode step of the token-producing decoder (batch 1 and 64, each sequence at the end of its
/// cache) and one prefill of up to 64 positions, against the plain reference decoder of the tests
/// (double precision, no cache) as the baseline: the ratio is what compilation buys.
/// </summary>
[Config(typeof(WorkloadConfig))]
[MemoryDiagnoser]
public class StepBenchmarks
{
    private static readonly string[] Models = ["block_main_b4_5", "vanilla_31", "vanilla_70"];

    private ILanguageModel model = null!;
    private KvCache cache = null!;
    private readonly Scratch scratch = new();
    private readonly DecoderRows decodeRows = new();
    private readonly DecoderRows prefillRows = new();
    private float[] decodeInput = [];
    private float[] decodeHidden = [];
    private float[] prefillInput = [];
    private float[] prefillHidden = [];
    private double[][] referenceInput = [];
    private ReferenceDecoder reference = null!;

    [ParamsSource(nameof(Cases))]
    public StepCase Case { get; set; } = null!;

    public static IEnumerable<StepCase> Cases() =>
        from info in BenchmarkModels.Selected()
        where Models.Contains(info.Name)
        from batch in new[] { 1, 64 }
        select new StepCase(info.Name, batch);

    [GlobalSetup]
    public void Setup()
    {
        var descriptor = BenchmarkModels.Find(Case.Model);
        model = descriptor.CreateRandom(1, TensorDType.F32);
        var shape = model.Info.Decoder;
        var position = Case.Capacity - 1;
        cache = new KvCache(Case.Batch, shape.Layers, Case.Capacity, shape.KvHeads, shape.HeadDim, model.Info.Bf16KvCache);
        for (var b = 0; b < Case.Batch; b++)
        {
            decodeRows.Add(b, position, position);
        }

        for (var i = 0; i < Case.PrefillLength; i++)
        {
            prefillRows.Add(0, i, i);
        }

        decodeInput = BenchmarkModels.RandomRows(Case.Batch, shape.Hidden, 3);
        decodeHidden = new float[decodeInput.Length];
        prefillInput = BenchmarkModels.RandomRows(Case.PrefillLength, shape.Hidden, 4);
        prefillHidden = new float[prefillInput.Length];

        var tensors = descriptor.Tensors.ToDictionary(t => t.Name, t => RandomWeights.Values(t, 1, TensorDType.F32));
        var prefix = model.Info.Kind == ModelKind.Block ? "token_decoder.gpt_neox." : "gpt_neox.";
        reference = new ReferenceDecoder(name => tensors[name], prefix, ReferenceModels.Config(model.Info, shape));
        referenceInput = Enumerable.Range(0, Case.PrefillLength).Select(r => BenchmarkModels.Row(prefillInput, r, shape.Hidden)).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        cache.Dispose();
        scratch.Dispose();
        model.Dispose();
    }

    [Benchmark(Description = "decode step (generated)")]
    public void DecodeStep()
    {
        decodeInput.CopyTo(decodeHidden, 0);
        BenchmarkModels.Decode(model, decodeHidden, decodeRows, cache, scratch);
    }

    [Benchmark(Description = "prefill (generated)")]
    public void Prefill()
    {
        prefillInput.CopyTo(prefillHidden, 0);
        BenchmarkModels.Decode(model, prefillHidden, prefillRows, cache, scratch);
    }

    [Benchmark(Baseline = true, Description = "prefill (plain reference)")]
    public double[][] ReferencePrefill() => reference.Forward(referenceInput, Enumerable.Range(0, referenceInput.Length).ToArray());
}
