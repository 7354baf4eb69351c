namespace BlockTransformer.Runtime;

/// <summary>FLOPs and bytes read by one phase of a generate call, and the time this machine needs at least.</summary>
public sealed record PhaseCost(double Flops, double WeightBytes, double KvBytes, double LowerBoundSeconds)
{
    public static readonly PhaseCost Zero = new(0, 0, 0, 0);

    public double Bytes => WeightBytes + KvBytes;

    public PhaseCost Add(PhaseCost other) => new(Flops + other.Flops, WeightBytes + other.WeightBytes, KvBytes + other.KvBytes, LowerBoundSeconds + other.LowerBoundSeconds);
}

/// <summary>Prefill and decode cost of a whole generate call.</summary>
public sealed record GenerationCost(PhaseCost Prefill, PhaseCost Decode)
{
    public PhaseCost Total => Prefill.Add(Decode);
}

/// <summary>Peak FP32 FLOP/s and memory bandwidth (bytes/s) of the machine the bound is computed for.</summary>
public sealed record MachinePeaks(double FlopsPerSecond, double BytesPerSecond);

/// <summary>
/// The cost model of Pope et al. (2022) applied to the exact call sequence of the generators: every
/// decoder call reads all its weights once (whatever the number of rows) and each cached K/V position
/// its rows attend to once (a prefill's queries share them), and does 2 FLOPs per weight per row plus
/// 4·d_model FLOPs per (query, attended position) pair (q·k and p·v). A call takes at least
/// max(FLOPs / peak FLOP/s, bytes / bandwidth); phases add their calls.
/// Linear weights are 4 bytes each, or 2 with memory_dtype "bf16"; cached K and V likewise with kv_cache_dtype.
/// </summary>
public static class CostModel
{
    public static GenerationCost Generation(ModelInfo info, int promptLength, int newTokens, int batch, MachinePeaks peaks) =>
        info.Kind == ModelKind.Block
            ? Block(info, promptLength, newTokens, batch, peaks)
            : Vanilla(info, promptLength, newTokens, batch, peaks);

    /// <summary>Weights read by one forward of a decoder stack (the linear layers; norms are negligible).</summary>
    public static long LinearParameters(DecoderShape s) =>
        (long)s.Layers * ((((s.Heads + (2L * s.KvHeads)) * s.HeadDim) * s.Hidden) + ((long)s.Hidden * s.Hidden) + (2L * s.Hidden * s.Intermediate));

    private static GenerationCost Block(ModelInfo info, int promptLength, int newTokens, int batch, MachinePeaks peaks)
    {
        var lb = info.BlockLength;
        var r = info.PrefixLength;
        var blocks = (promptLength + lb - 1) / lb;
        var blockDecoder = info.BlockDecoder!;
        var prefill = PhaseCost.Zero;
        for (var b = 0; b < batch; b++)
        {
            prefill = prefill.Add(Decoder(info, blockDecoder, blocks, Triangle(blocks), blocks, peaks));
        }

        var decode = PhaseCost.Zero;
        var expansion = (long)r * info.Decoder.Hidden * blockDecoder.Hidden;
        for (int produced = 0, position = blocks; produced < newTokens; produced += lb, position++)
        {
            var count = Math.Min(lb, newTokens - produced);
            decode = decode.Add(Call(2.0 * batch * expansion, expansion * info.LinearWeightBytes, 0, peaks));
            decode = decode.Add(Decoder(info, info.Decoder, batch * r, batch * Triangle(r), (long)batch * r, peaks)).Add(LmHead(info, batch, peaks));
            for (var j = 1; j < count; j++)
            {
                decode = decode.Add(Decoder(info, info.Decoder, batch, (long)batch * (r + j), (long)batch * (r + j), peaks)).Add(LmHead(info, batch, peaks));
            }

            if (produced + count < newTokens)
            {
                decode = decode.Add(Decoder(info, blockDecoder, batch, (long)batch * (position + 1), (long)batch * (position + 1), peaks));
            }
        }

        return new GenerationCost(prefill, decode);
    }

    private static GenerationCost Vanilla(ModelInfo info, int promptLength, int newTokens, int batch, MachinePeaks peaks)
    {
        var prefill = PhaseCost.Zero;
        for (var b = 0; b < batch; b++)
        {
            prefill = prefill.Add(Decoder(info, info.Decoder, promptLength, Triangle(promptLength), promptLength, peaks)).Add(LmHead(info, 1, peaks));
        }

        var decode = PhaseCost.Zero;
        for (var step = 1; step < newTokens; step++)
        {
            var context = (long)batch * (promptLength + step);
            decode = decode.Add(Decoder(info, info.Decoder, batch, context, context, peaks)).Add(LmHead(info, batch, peaks));
        }

        return new GenerationCost(prefill, decode);
    }

    /// <summary>
    /// One decoder call over <paramref name="rows"/> new positions: <paramref name="pairs"/> (query, key)
    /// pairs in all, over <paramref name="positions"/> distinct cached positions (summed over sequences).
    /// </summary>
    public static PhaseCost Decoder(ModelInfo info, DecoderShape s, int rows, long pairs, long positions, MachinePeaks peaks)
    {
        var weights = LinearParameters(s);
        var flops = (2.0 * rows * weights) + (4.0 * s.Layers * pairs * s.Heads * s.HeadDim);
        var kvBytes = (double)positions * info.KvBytesPerPosition(s);
        return Call(flops, (double)weights * info.LinearWeightBytes, kvBytes, peaks);
    }

    private static PhaseCost LmHead(ModelInfo info, int rows, MachinePeaks peaks)
    {
        var weights = (long)info.VocabSize * info.Decoder.Hidden;
        return Call(2.0 * rows * weights, (double)weights * info.LinearWeightBytes, 0, peaks);
    }

    private static PhaseCost Call(double flops, double weightBytes, double kvBytes, MachinePeaks peaks)
    {
        return new PhaseCost(flops, weightBytes, kvBytes, Math.Max(flops / peaks.FlopsPerSecond, (weightBytes + kvBytes) / peaks.BytesPerSecond));
    }

    private static long Triangle(long n) => n * (n + 1) / 2;
}
