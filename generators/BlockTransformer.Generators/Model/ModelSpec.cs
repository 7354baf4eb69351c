namespace BlockTransformer.Generators.Model;

internal enum ModelKind
{
    Block,
    Vanilla,
}

/// <summary>One GPT-NeoX decoder stack, every size resolved (defaults applied).</summary>
internal sealed record DecoderSpec(
    int Layers,
    int Hidden,
    int Heads,
    int KvHeads,
    int Intermediate,
    double RotaryPct,
    double RotaryBase,
    double LayerNormEps,
    bool ParallelResidual,
    int MaxContext)
{
    public int HeadDim => Hidden / Heads;

    /// <summary>r = int(d_h · rotary_pct): the leading head dims that get RoPE.</summary>
    public int RotaryDims => (int)(HeadDim * RotaryPct);

    /// <summary>Query heads that share one K/V head (1 = full multi-head attention).</summary>
    public int GroupSize => Heads / KvHeads;

    public int KvDim => KvHeads * HeadDim;

    /// <summary>Width of the fused query_key_value output: H query heads plus K and V per KV head.</summary>
    public int QkvWidth => (Heads + (2 * KvHeads)) * HeadDim;

    public long LayerParameters =>
        (4L * Hidden) // two LayerNorms, weight and bias
        + ((long)QkvWidth * Hidden) + QkvWidth
        + ((long)Hidden * Hidden) + Hidden
        + ((long)Intermediate * Hidden) + Intermediate
        + ((long)Hidden * Intermediate) + Hidden;

    /// <summary>All layers plus the final LayerNorm.</summary>
    public long StackParameters => (Layers * LayerParameters) + (2L * Hidden);
}

/// <summary>The block-specific part of a block model: L_B, R, the embedder and the block decoder.</summary>
internal sealed record BlockSpec(int BlockLength, int PrefixLength, string Embedder, DecoderSpec BlockDecoder)
{
    public int EmbedderWidth => BlockDecoder.Hidden / BlockLength;
}

/// <summary>
/// A validated model spec: the equatable model between parsing and emission. <see cref="Decoder"/> is
/// the stack that produces tokens (the token decoder of a block model, the only decoder of a vanilla one).
/// <see cref="MemoryDType"/> is how linear-layer weights are kept in memory ("f32" or "bf16"),
/// <see cref="KvCacheDType"/> how cached keys and values are ("f32" or "bf16", rounded when stored).
/// </summary>
internal sealed record ModelSpec(
    string Name,
    string TypeName,
    string Namespace,
    string SpecFileName,
    ModelKind Kind,
    int VocabSize,
    int EosId,
    int PadId,
    string WeightDType,
    string MemoryDType,
    string KvCacheDType,
    BlockSpec? Block,
    DecoderSpec Decoder)
{
    /// <summary>Embedding tables: the embedder lookup (block models), token embed_in and the LM head embed_out.</summary>
    public long EmbeddingParameters =>
        (2L * VocabSize * Decoder.Hidden) + (Block is null ? 0 : (long)VocabSize * Block.EmbedderWidth);

    /// <summary>Everything that is loaded; the unused block-decoder embed_in is not counted (paper Table 1).</summary>
    public long TotalParameters => EmbeddingParameters + Decoder.StackParameters + (Block is null
        ? 0
        : Block.BlockDecoder.StackParameters + ExpansionParameters);

    public bool Bf16Weights => MemoryDType == "bf16";

    public bool Bf16KvCache => KvCacheDType == "bf16";

    /// <summary>Expansion layer D_blk → R·D_tok with bias.</summary>
    public long ExpansionParameters => Block is null
        ? 0
        : ((long)Block.PrefixLength * Decoder.Hidden * Block.BlockDecoder.Hidden) + ((long)Block.PrefixLength * Decoder.Hidden);
}
