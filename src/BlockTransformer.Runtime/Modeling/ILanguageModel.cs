namespace BlockTransformer.Runtime;

/// <summary>A compiled model with loaded weights. Generated types implement one of the two sub-interfaces.</summary>
public interface ILanguageModel : IDisposable
{
    ModelInfo Info { get; }

    /// <summary>logits[r] = embed_out · hidden[r] for <paramref name="rows"/> final-normed rows.</summary>
    void LmHead(ReadOnlySpan<float> hidden, int rows, Span<float> logits);

    /// <summary>
    /// Greedy decoding's LM head: tokens[r] = argmax of logits[r] (the lowest id on ties, as
    /// <see cref="Sampler.ArgMax"/>), without handing the logits over. Generated CPU models never write
    /// them to memory (<see cref="GreedyArgMax"/>); this default computes and scans them.
    /// </summary>
    void LmHeadArgMax(ReadOnlySpan<float> hidden, int rows, Span<int> tokens)
    {
        var vocab = Info.VocabSize;
        var logits = new float[rows * vocab];
        LmHead(hidden, rows, logits);
        for (var r = 0; r < rows; r++)
        {
            tokens[r] = Sampler.ArgMax(logits.AsSpan(r * vocab, vocab));
        }
    }
}

/// <summary>
/// The steps of a Block Transformer, named after the paper's parts; <see cref="BlockGenerator"/> drives them.
/// Decoder calls work in place: input embeddings in <c>hidden</c>, final-LayerNorm outputs out.
/// </summary>
public interface IBlockTransformerModel : ILanguageModel
{
    /// <summary>Embedder: for each block of L_B token ids, e = concat(E[t_1], …, E[t_LB]).</summary>
    void Embed(ReadOnlySpan<int> blockTokens, Span<float> blockVectors);

    /// <summary>Block decoder over block vectors; writes K/V into <paramref name="cache"/>.</summary>
    void BlockDecoder(Span<float> hidden, DecoderRows rows, KvCache cache, Scratch scratch);

    /// <summary>Expansion: context → R prefix vectors, p = W_exp · ctx + b_exp cut into R chunks.</summary>
    void Expand(ReadOnlySpan<float> context, int rows, Span<float> prefix);

    /// <summary>Token decoder embed_in lookup for one token per row.</summary>
    void TokenEmbed(ReadOnlySpan<int> tokens, Span<float> output);

    /// <summary>Token decoder over prefix vectors or token embeddings, with its per-block cache.</summary>
    void TokenDecoder(Span<float> hidden, DecoderRows rows, KvCache cache, Scratch scratch);
}

/// <summary>A vanilla GPT-NeoX model: embed_in, one decoder, embed_out.</summary>
public interface IVanillaModel : ILanguageModel
{
    void Embed(ReadOnlySpan<int> tokens, Span<float> output);

    void Decoder(Span<float> hidden, DecoderRows rows, KvCache cache, Scratch scratch);
}
