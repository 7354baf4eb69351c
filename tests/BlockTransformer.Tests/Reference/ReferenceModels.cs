using BlockTransformer.Runtime;
using static BlockTransformer.Tests.Reference.ReferenceMath;

namespace BlockTransformer.Tests.Reference;

/// <summary>One reference generation: greedy ids and the logits each was chosen from.</summary>
internal sealed record ReferenceRun(List<int> Ids, List<double[]> Logits, bool StoppedAtEos);

/// <summary>Builds reference models from a model's info and its tensors (read from the same file).</summary>
internal static class ReferenceModels
{
    public static DecoderConfig Config(ModelInfo info, DecoderShape s) =>
        new(s.Layers, s.Hidden, s.Heads, s.KvHeads, s.Intermediate, s.RotaryDims, s.RotaryBase, s.LayerNormEps, s.ParallelResidual, info.Bf16KvCache);

    public static Func<string, float[]> ReadAll(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        var tensors = file.Tensors.Values.ToDictionary(e => e.Name, e =>
        {
            var values = new float[e.ElementCount];
            file.ReadAsFloat32(e, values);
            return values;
        });
        return name => tensors[name];
    }
}

/// <summary>
/// The Block Transformer generation procedure of brief §3, one prompt at a time, recomputing both decoders
/// from scratch for every step (no caches, no batching) so nothing is shared with the runtime's loop.
/// </summary>
internal sealed class ReferenceBlockModel(ModelInfo info, Func<string, float[]> tensor)
{
    private readonly ReferenceDecoder blockDecoder = new(tensor, "block_decoder.gpt_neox.", ReferenceModels.Config(info, info.BlockDecoder!));
    private readonly ReferenceDecoder tokenDecoder = new(tensor, "token_decoder.gpt_neox.", ReferenceModels.Config(info, info.Decoder));

    public ReferenceRun Generate(int[] prompt, int maxNewTokens, bool trainingPositions, bool stopAtEos = true)
    {
        var lb = info.BlockLength;
        var r = info.PrefixLength;
        var d = info.Decoder.Hidden;
        var pad = (lb - (prompt.Length % lb)) % lb;
        var tokens = Enumerable.Repeat(info.PadId, pad).Concat(prompt).ToList();
        var blockVectors = Enumerable.Range(0, tokens.Count / lb).Select(b => EmbedBlock(tokens.GetRange(b * lb, lb))).ToList();
        var ids = new List<int>();
        var logits = new List<double[]>();
        while (true)
        {
            var context = blockDecoder.Forward(blockVectors.ToArray(), Enumerable.Range(0, blockVectors.Count).ToArray())[^1];
            var expanded = Linear(context, tensor("token_decoder.expansion_layer.weight"), tensor("token_decoder.expansion_layer.bias"), r * d);
            var inputs = Enumerable.Range(0, r).Select(i => expanded[(i * d)..((i + 1) * d)]).ToList();
            var positions = Enumerable.Range(0, r).Select(i => trainingPositions ? i : 0).ToList();
            var block = new List<int>();
            var count = Math.Min(lb, maxNewTokens - ids.Count);
            var stopped = false;
            for (var j = 0; j < count; j++)
            {
                var hidden = tokenDecoder.Forward(inputs.ToArray(), positions.ToArray())[^1];
                var scores = Linear(hidden, tensor("token_decoder.embed_out.weight"), null, info.VocabSize);
                var token = ArgMax(scores);
                ids.Add(token);
                logits.Add(scores);
                block.Add(token);
                if (stopAtEos && token == info.EosId)
                {
                    stopped = true;
                    break;
                }

                // x_j enters at R + j - 1 in training positions and at j in reference generate().
                inputs.Add(Row(tensor("token_decoder.gpt_neox.embed_in.weight"), token, d));
                positions.Add(trainingPositions ? r + j : j + 1);
            }

            if (stopped || ids.Count >= maxNewTokens)
            {
                return new ReferenceRun(ids, logits, stopped);
            }

            blockVectors.Add(EmbedBlock(block));
        }
    }

    private double[] EmbedBlock(List<int> block)
    {
        var width = info.BlockDecoder!.Hidden / info.BlockLength;
        return block.SelectMany(t => Row(tensor("embedder.embeddings.weight"), t, width)).ToArray();
    }
}

/// <summary>Vanilla GPT-NeoX generation, recomputing the whole sequence for every token.</summary>
internal sealed class ReferenceVanillaModel(ModelInfo info, Func<string, float[]> tensor)
{
    private readonly ReferenceDecoder decoder = new(tensor, "gpt_neox.", ReferenceModels.Config(info, info.Decoder));

    public ReferenceRun Generate(int[] prompt, int maxNewTokens, bool stopAtEos = true)
    {
        var tokens = prompt.ToList();
        var ids = new List<int>();
        var logits = new List<double[]>();
        while (ids.Count < maxNewTokens)
        {
            var inputs = tokens.Select(t => Row(tensor("gpt_neox.embed_in.weight"), t, info.Decoder.Hidden)).ToArray();
            var hidden = decoder.Forward(inputs, Enumerable.Range(0, tokens.Count).ToArray())[^1];
            var scores = Linear(hidden, tensor("embed_out.weight"), null, info.VocabSize);
            var token = ArgMax(scores);
            ids.Add(token);
            logits.Add(scores);
            tokens.Add(token);
            if (stopAtEos && token == info.EosId)
            {
                return new ReferenceRun(ids, logits, true);
            }
        }

        return new ReferenceRun(ids, logits, false);
    }
}
