namespace BlockTransformer.Runtime;

public enum ModelKind
{
    Block,
    Vanilla,
}

/// <summary>The sizes of one compiled decoder stack.</summary>
public sealed record DecoderShape(
    int Layers,
    int Hidden,
    int Heads,
    int KvHeads,
    int HeadDim,
    int RotaryDims,
    int Intermediate,
    int MaxContext,
    bool ParallelResidual,
    double RotaryBase,
    double LayerNormEps)
{
    public int KvDim => KvHeads * HeadDim;
}

/// <summary>What a compiled model is: every number `bt info` prints comes from here.</summary>
public sealed record ModelInfo(
    string Name,
    ModelKind Kind,
    int VocabSize,
    int EosId,
    int PadId,
    string WeightDType,
    string MemoryDType,
    string KvCacheDType,
    int BlockLength,
    int PrefixLength,
    DecoderShape? BlockDecoder,
    DecoderShape Decoder,
    long TotalParameters,
    long EmbeddingParameters)
{
    public long NonEmbeddingParameters => TotalParameters - EmbeddingParameters;

    /// <summary>Bytes per linear-layer weight in memory: 2 for memory_dtype "bf16", else 4.</summary>
    public int LinearWeightBytes => MemoryDType == "bf16" ? 2 : sizeof(float);

    /// <summary>Cached keys and values are bf16 (kv_cache_dtype "bf16"), rounded when stored; else f32.</summary>
    public bool Bf16KvCache => KvCacheDType == "bf16";

    /// <summary>K and V of every layer of <paramref name="decoder"/> for one position, in the KV-cache dtype.</summary>
    public long KvBytesPerPosition(DecoderShape decoder) => 2L * decoder.Layers * decoder.KvDim * (Bf16KvCache ? 2 : sizeof(float));

    /// <summary>
    /// Long-lived KV bytes per token of context: the block decoder stores one position per L_B tokens; a
    /// vanilla model one per token. (The token decoder's cache is per block and constant, see below.)
    /// </summary>
    public double KvCacheBytesPerToken => Kind == ModelKind.Block
        ? (double)KvBytesPerPosition(BlockDecoder!) / BlockLength
        : KvBytesPerPosition(Decoder);

    /// <summary>KV bytes per block of L_B tokens (block decoder; for vanilla, L_B = 1 and this is per token).</summary>
    public long KvCacheBytesPerBlock => Kind == ModelKind.Block ? KvBytesPerPosition(BlockDecoder!) : KvBytesPerPosition(Decoder);

    /// <summary>The token decoder's whole per-sequence cache: R + L_B - 1 positions, reset every block.</summary>
    public long TokenDecoderCacheBytes => Kind == ModelKind.Block ? (PrefixLength + BlockLength - 1) * KvBytesPerPosition(Decoder) : 0;

    /// <summary>
    /// Positions the long-lived KV cache (block decoder, or the vanilla decoder with L_B = 1) needs for one
    /// sequence: the prompt left-padded to whole blocks plus every generated block but the last, which never
    /// re-enters the model (brief §3.4).
    /// </summary>
    public int CachePositions(int promptLength, int newTokens) =>
        (int)Math.Min((((long)promptLength + BlockLength - 1) / BlockLength) + (((long)newTokens + BlockLength - 1) / BlockLength) - 1, int.MaxValue);

    /// <summary>
    /// The most tokens a prompt of <paramref name="promptLength"/> tokens can be continued by within the long-lived
    /// decoder's max_context (the inverse of <see cref="CachePositions"/>); 0 when the prompt alone does not fit.
    /// </summary>
    public int MaxNewTokens(int promptLength) =>
        (int)Math.Clamp(BlockLength * ((BlockDecoder ?? Decoder).MaxContext + 1L - (((long)promptLength + BlockLength - 1) / BlockLength)), 0, int.MaxValue);

    /// <summary>
    /// <see cref="CachePositions"/> for a request, refused with the limit when it exceeds the long-lived
    /// decoder's max_context.
    /// </summary>
    public int CheckedCachePositions(int longestPrompt, int newTokens)
    {
        var positions = CachePositions(longestPrompt, newTokens);
        var limit = (BlockDecoder ?? Decoder).MaxContext;
        if (positions > limit)
        {
            throw new ArgumentException(Kind == ModelKind.Block
                ? $"prompt + max new tokens need {positions} block positions, but {Name}'s block decoder has max_context {limit} blocks ({limit * BlockLength} tokens)."
                : $"prompt + max new tokens need {positions} positions, but {Name} has max_context {limit}.");
        }

        return positions;
    }

    /// <summary>Brief §3.2: left-pads a prompt with the pad id so it ends on a block boundary.</summary>
    public int[] LeftPadToBlocks(int[] prompt)
    {
        var pad = (BlockLength - (prompt.Length % BlockLength)) % BlockLength;
        return Enumerable.Repeat(PadId, pad).Concat(prompt).ToArray();
    }

    /// <summary>KV-cache bytes a generate call allocates for <paramref name="batch"/> sequences (f32, both caches).</summary>
    public long KvCacheBytes(int promptLength, int newTokens, int batch) =>
        batch * (((long)CachePositions(promptLength, newTokens) * KvCacheBytesPerBlock) + TokenDecoderCacheBytes);
}
