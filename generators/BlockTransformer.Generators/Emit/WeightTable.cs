using System.Collections.Generic;
using BlockTransformer.Generators.Model;

namespace BlockTransformer.Generators.Emit;

/// <summary>
/// One checkpoint tensor: official name, the generated field that holds it, and its shape. Matrices
/// multiplied by the linear kernels are <see cref="Packed"/>: repacked into 16-output panels on load.
/// </summary>
internal sealed record Weight(string TensorName, string Field, long[] Shape, bool Packed = false)
{
    /// <summary>A linear layer's [out, in] weight (trailing kernel dims of size 1 ignored), packed on load.</summary>
    public static Weight Linear(string tensorName, string field, params long[] shape) => new(tensorName, field, shape, Packed: true);
}

/// <summary>A decoder stack as the emitter sees it: C# name prefix, checkpoint key prefix and sizes.</summary>
internal sealed record DecoderPart(string Prefix, string FieldPrefix, string TensorPrefix, DecoderSpec Spec)
{
    public string LayerField(int layer, string part) => $"{FieldPrefix}Layer{layer}{part}";

    public string FinalNormWeight => $"{FieldPrefix}FinalNormWeight";

    public string FinalNormBias => $"{FieldPrefix}FinalNormBias";

    public string RotaryTable => $"{FieldPrefix}RotaryTable";

    /// <summary>The public forward method: BlockDecoder, TokenDecoder, or Decoder for a vanilla model.</summary>
    public string ForwardMethod => Prefix == "Decoder" ? Prefix : Prefix + "Decoder";
}

/// <summary>The official tensor names and shapes of a spec (brief §5.2), in checkpoint order.</summary>
internal static class WeightTable
{
    public const string UnusedBlockEmbedIn = "block_decoder.gpt_neox.embed_in.weight";

    public static DecoderPart? BlockDecoder(ModelSpec spec) =>
        spec.Block is null ? null : new DecoderPart("Block", "block", "block_decoder.gpt_neox.", spec.Block.BlockDecoder);

    public static DecoderPart TokenDecoder(ModelSpec spec) => spec.Block is null
        ? new DecoderPart("Decoder", "decoder", "gpt_neox.", spec.Decoder)
        : new DecoderPart("Token", "token", "token_decoder.gpt_neox.", spec.Decoder);

    /// <summary>Field holding embed_in of the token-producing decoder (the vanilla model's input table).</summary>
    public static string EmbedIn(ModelSpec spec) => spec.Block is null ? "embedIn" : "tokenEmbedIn";

    /// <summary>Field holding the LM head embed_out.</summary>
    public static string EmbedOut(ModelSpec spec) => spec.Block is null ? "embedOut" : "tokenEmbedOut";

    public static List<Weight> For(ModelSpec spec)
    {
        var weights = new List<Weight>();
        var vocab = spec.VocabSize;
        var block = BlockDecoder(spec);
        var tokens = TokenDecoder(spec);
        if (spec.Block is not null && block is not null)
        {
            weights.Add(new Weight("embedder.embeddings.weight", "embedderTable", new long[] { vocab, spec.Block.EmbedderWidth }));
            AddStack(weights, block);
            weights.Add(new Weight("token_decoder.gpt_neox.embed_in.weight", EmbedIn(spec), new long[] { vocab, tokens.Spec.Hidden }));
            AddStack(weights, tokens);
            weights.Add(Weight.Linear("token_decoder.embed_out.weight", EmbedOut(spec), vocab, tokens.Spec.Hidden));
            var prefixWidth = (long)spec.Block.PrefixLength * tokens.Spec.Hidden;
            weights.Add(Weight.Linear("token_decoder.expansion_layer.weight", "expansionWeight", prefixWidth, block.Spec.Hidden, 1));
            weights.Add(new Weight("token_decoder.expansion_layer.bias", "expansionBias", new long[] { prefixWidth }));
        }
        else
        {
            weights.Add(new Weight("gpt_neox.embed_in.weight", EmbedIn(spec), new long[] { vocab, tokens.Spec.Hidden }));
            AddStack(weights, tokens);
            weights.Add(Weight.Linear("embed_out.weight", EmbedOut(spec), vocab, tokens.Spec.Hidden));
        }

        return weights;
    }

    private static void AddStack(List<Weight> weights, DecoderPart part)
    {
        var s = part.Spec;
        for (var i = 0; i < s.Layers; i++)
        {
            var layer = $"{part.TensorPrefix}layers.{i}.";
            void Add(string name, string field, params long[] shape) =>
                weights.Add(new Weight(layer + name, part.LayerField(i, field), shape));
            void AddLinear(string name, string field, params long[] shape) =>
                weights.Add(Weight.Linear(layer + name, part.LayerField(i, field), shape));
            Add("input_layernorm.weight", "InputNormWeight", s.Hidden);
            Add("input_layernorm.bias", "InputNormBias", s.Hidden);
            Add("post_attention_layernorm.weight", "PostAttentionNormWeight", s.Hidden);
            Add("post_attention_layernorm.bias", "PostAttentionNormBias", s.Hidden);
            AddLinear("attention.query_key_value.weight", "QkvWeight", s.QkvWidth, s.Hidden);
            Add("attention.query_key_value.bias", "QkvBias", s.QkvWidth);
            AddLinear("attention.dense.weight", "DenseWeight", s.Hidden, s.Hidden);
            Add("attention.dense.bias", "DenseBias", s.Hidden);
            AddLinear("mlp.dense_h_to_4h.weight", "UpWeight", s.Intermediate, s.Hidden);
            Add("mlp.dense_h_to_4h.bias", "UpBias", s.Intermediate);
            AddLinear("mlp.dense_4h_to_h.weight", "DownWeight", s.Hidden, s.Intermediate);
            Add("mlp.dense_4h_to_h.bias", "DownBias", s.Hidden);
        }

        weights.Add(new Weight(part.TensorPrefix + "final_layer_norm.weight", part.FinalNormWeight, new long[] { s.Hidden }));
        weights.Add(new Weight(part.TensorPrefix + "final_layer_norm.bias", part.FinalNormBias, new long[] { s.Hidden }));
    }
}
