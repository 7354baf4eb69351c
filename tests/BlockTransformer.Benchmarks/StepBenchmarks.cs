using BenchmarkDotNet.Attributes;
using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;

namespace BlockTransformer.Benchmarks;

/// <summary>
/// One decode step of the token-producing decoder (batch 1 and 64, each sequence at context 64) and one
/// 64-token prefill, against the plain reference decoder of the tests (double precision, no cache) as
/// the baseline: the ratio is what compilation buys.
/// </summary>
[MemoryDiagnoser]
public class StepBenchmarks
{
    private const int Context = 64;

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

    [Params("block_main_b4_5", "vanilla_31", "vanilla_70")]
    public string Model { get; set; } = "";

    [Params(1, 64)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var descriptor = BenchmarkModels.Find(Model);
        model = descriptor.CreateRandom(1, TensorDType.F32);
        var shape = model.Info.Decoder;
        var capacity = model.Info.Kind == ModelKind.Block ? model.Info.PrefixLength + model.Info.BlockLength - 1 : Context + 1;
        var position = capacity - 1;
        cache = new KvCache(Batch, shape.Layers, capacity, shape.KvHeads, shape.HeadDim);
        for (var b = 0; b < Batch; b++)
        {
            decodeRows.Add(b, position, position);
        }

        var prefillLength = Math.Min(capacity, Context);
        for (var i = 0; i < prefillLength; i++)
        {
            prefillRows.Add(0, i, i);
        }

        decodeInput = BenchmarkModels.RandomRows(Batch, shape.Hidden, 3);
        decodeHidden = new float[decodeInput.Length];
        prefillInput = BenchmarkModels.RandomRows(prefillLength, shape.Hidden, 4);
        prefillHidden = new float[prefillInput.Length];

        var tensors = descriptor.Tensors.ToDictionary(t => t.Name, t => RandomWeights.Values(t, 1, TensorDType.F32));
        var prefix = model.Info.Kind == ModelKind.Block ? "token_decoder.gpt_neox." : "gpt_neox.";
        reference = new ReferenceDecoder(name => tensors[name], prefix, ReferenceModels.Config(shape));
        referenceInput = Enumerable.Range(0, prefillLength).Select(r => prefillInput.Skip(r * shape.Hidden).Take(shape.Hidden).Select(v => (double)v).ToArray()).ToArray();
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
