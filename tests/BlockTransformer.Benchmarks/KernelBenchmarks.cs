using BenchmarkDotNet.Attributes;
using BlockTransformer.Runtime;

namespace BlockTransformer.Benchmarks;

/// <summary>
/// The matrix kernel family at the LM-head shape of each model (vocab × width, the largest matrix),
/// for 1 row (bandwidth-bound decode) and 64 rows (GEMM-shaped batch). Weight bytes per call are
/// vocab × width × 4; divide by the mean time for GB/s, or 2 × rows × vocab × width for FLOP/s.
/// </summary>
[MemoryDiagnoser]
public class LmHeadBenchmarks
{
    private ILanguageModel model = null!;
    private float[] hidden = [];
    private float[] logits = [];

    [Params("block_main_b4_5", "block_main_b4_19", "block_main_b4_85", "vanilla_31", "vanilla_70", "vanilla_160")]
    public string Model { get; set; } = "";

    [Params(1, 64)]
    public int Rows { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        model = BenchmarkModels.Find(Model).CreateRandom(1, TensorDType.F32);
        hidden = BenchmarkModels.RandomRows(Rows, model.Info.Decoder.Hidden, 2);
        logits = new float[Rows * model.Info.VocabSize];
    }

    [GlobalCleanup]
    public void Cleanup() => model.Dispose();

    [Benchmark]
    public void LmHead() => model.LmHead(hidden, Rows, logits);
}
