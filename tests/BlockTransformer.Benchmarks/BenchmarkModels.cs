using BlockTransformer.Models;
using BlockTransformer.Runtime;

namespace BlockTransformer.Benchmarks;

/// <summary>The paper shapes the benchmarks run at, with seeded random weights.</summary>
internal static class BenchmarkModels
{
    public static ModelDescriptor Find(string name) => CompiledModels.All.Single(m => m.Info.Name == name);

    /// <summary>The decoder that produces tokens: the token decoder of a block model, the only one of a vanilla model.</summary>
    public static void Decode(ILanguageModel model, Span<float> hidden, DecoderRows rows, KvCache cache, Scratch scratch)
    {
        switch (model)
        {
            case IBlockTransformerModel block:
                block.TokenDecoder(hidden, rows, cache, scratch);
                break;
            case IVanillaModel vanilla:
                vanilla.Decoder(hidden, rows, cache, scratch);
                break;
        }
    }

    public static float[] RandomRows(int rows, int width, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows * width).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
    }
}
