using BlockTransformer.Models;
using BlockTransformer.Runtime;

namespace BlockTransformer.Benchmarks;

/// <summary>The paper shapes the benchmarks run at, with seeded random weights.</summary>
internal static class BenchmarkModels
{
    /// <summary>The six paper models, or the comma-separated subset named in BT_BENCH_MODELS.</summary>
    public static IEnumerable<ModelInfo> Selected()
    {
        var names = Environment.GetEnvironmentVariable("BT_BENCH_MODELS");
        var all = CompiledModels.All.Select(m => m.Info);
        return string.IsNullOrWhiteSpace(names)
            ? all
            : names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n =>
                all.SingleOrDefault(m => m.Name == n) ?? throw new InvalidOperationException(
                    $"BT_BENCH_MODELS names '{n}', which is not a compiled model (compiled: {string.Join(", ", all.Select(m => m.Name))})"));
    }

    public static ModelDescriptor Find(string name) => CompiledModels.All.Single(m => m.Info.Name == name);

    /// <summary>A model's decoder stacks with the prefix of their generated names: Block and Token, or Decoder.</summary>
    public static IEnumerable<(string Part, DecoderShape Shape)> Decoders(ModelInfo info) =>
        info.Kind == ModelKind.Block ? [("Block", info.BlockDecoder!), ("Token", info.Decoder)] : [("Decoder", info.Decoder)];

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

    /// <summary>The same values in a 64-byte-aligned native buffer, as the kernels get them.</summary>
    public static AlignedBuffer Aligned(float[] values)
    {
        var buffer = new AlignedBuffer(Math.Max(values.Length, 1));
        values.CopyTo(buffer.Span);
        return buffer;
    }

    public static void DisposeAll(params AlignedBuffer[] buffers)
    {
        foreach (var buffer in buffers)
        {
            buffer.Dispose();
        }
    }

    public static double[] Row(float[] values, int row, int width) =>
        values.AsSpan(row * width, width).ToArray().Select(v => (double)v).ToArray();

    /// <summary>Random input rows twice: aligned f32 for the generated kernel, f64 rows for the reference.</summary>
    public static AlignedBuffer RandomInputs(int rows, int width, int seed, out double[][] reference)
    {
        var values = RandomRows(rows, width, seed);
        reference = Enumerable.Range(0, rows).Select(r => Row(values, r, width)).ToArray();
        return Aligned(values);
    }
}
