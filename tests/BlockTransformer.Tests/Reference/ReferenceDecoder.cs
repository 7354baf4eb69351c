using BlockTransformer.Runtime;
using static BlockTransformer.Tests.Reference.ReferenceMath;

namespace BlockTransformer.Tests.Reference;

/// <summary>A decoder's sizes; <paramref name="Bf16KvCache"/>: K (after RoPE) and V are rounded to bf16, as a bf16 KV cache holds them.</summary>
internal sealed record DecoderConfig(int Layers, int Hidden, int Heads, int KvHeads, int Intermediate, int RotaryDims, double RotaryBase, double Eps, bool ParallelResidual, bool Bf16KvCache);

/// <summary>
/// A GPT-NeoX decoder stack evaluated from scratch over a whole sequence (no KV cache): every call
/// recomputes all positions with an explicit causal loop, then applies final_layer_norm.
/// </summary>
internal sealed class ReferenceDecoder(Func<string, float[]> tensor, string prefix, DecoderConfig c)
{
    private int HeadDim => c.Hidden / c.Heads;

    public double[][] Forward(double[][] inputs, int[] positions)
    {
        var x = inputs.Select(v => (double[])v.Clone()).ToArray();
        for (var layer = 0; layer < c.Layers; layer++)
        {
            x = Layer(x, positions, $"{prefix}layers.{layer}.");
        }

        return x.Select(v => LayerNorm(v, tensor(prefix + "final_layer_norm.weight"), tensor(prefix + "final_layer_norm.bias"), c.Eps)).ToArray();
    }

    private double[][] Layer(double[][] x, int[] positions, string p)
    {
        var attnIn = x.Select(v => LayerNorm(v, tensor(p + "input_layernorm.weight"), tensor(p + "input_layernorm.bias"), c.Eps)).ToArray();
        var attention = Attention(attnIn, positions, p);
        var afterAttention = x.Select((v, t) => v.Select((e, i) => e + attention[t][i]).ToArray()).ToArray();
        // Parallel residual: the MLP sees the layer input; sequential: it sees x + attention.
        var mlpSource = c.ParallelResidual ? x : afterAttention;
        return afterAttention.Select((v, t) =>
        {
            var m = LayerNorm(mlpSource[t], tensor(p + "post_attention_layernorm.weight"), tensor(p + "post_attention_layernorm.bias"), c.Eps);
            var up = Linear(m, tensor(p + "mlp.dense_h_to_4h.weight"), tensor(p + "mlp.dense_h_to_4h.bias"), c.Intermediate).Select(Gelu).ToArray();
            var down = Linear(up, tensor(p + "mlp.dense_4h_to_h.weight"), tensor(p + "mlp.dense_4h_to_h.bias"), c.Hidden);
            return v.Select((e, i) => e + down[i]).ToArray();
        }).ToArray();
    }

    private double[][] Attention(double[][] a, int[] positions, string p)
    {
        var d = HeadDim;
        var group = c.Heads / c.KvHeads;
        var qkvWidth = (c.Heads + (2 * c.KvHeads)) * d;
        var qkv = a.Select(v => Linear(v, tensor(p + "attention.query_key_value.weight"), tensor(p + "attention.query_key_value.bias"), qkvWidth)).ToArray();

        // Layout: for each K/V head g, its `group` query heads, then its key, then its value
        // (with group = 1 this is GPT-NeoX's per-head [q | k | v]).
        double[] Slice(double[] row, int start) => row[start..(start + d)];
        double[] Query(int t, int h) => Rope(Slice(qkv[t], ((h / group) * (group + 2) * d) + ((h % group) * d)), positions[t]);
        double[] Key(int t, int g) => Cached(Rope(Slice(qkv[t], (g * (group + 2) * d) + (group * d)), positions[t]));
        double[] Value(int t, int g) => Cached(qkv[t][((g * (group + 2) * d) + ((group + 1) * d))..((g * (group + 2) * d) + ((group + 2) * d))]);

        var output = a.Select(_ => new double[c.Hidden]).ToArray();
        for (var t = 0; t < a.Length; t++)
        {
            for (var h = 0; h < c.Heads; h++)
            {
                var g = h / group;
                var context = Enumerable.Range(0, t + 1);
                var head = ReferenceMath.Attention(Query(t, h), context.Select(s => Key(s, g)).ToArray(), context.Select(s => Value(s, g)).ToArray());
                head.CopyTo(output[t], h * d);
            }
        }

        return output.Select(v => Linear(v, tensor(p + "attention.dense.weight"), tensor(p + "attention.dense.bias"), c.Hidden)).ToArray();
    }

    /// <summary>K or V as the cache holds it: each element rounded to the nearest bf16 for a bf16 cache.</summary>
    private double[] Cached(double[] v) =>
        c.Bf16KvCache ? v.Select(e => (double)TensorDTypes.Round((float)e, TensorDType.BF16)).ToArray() : v;

    /// <summary>Rotate-half RoPE on the first RotaryDims dims: dim i pairs with i + r/2, θ = pos·base^(-2i/r).</summary>
    private double[] Rope(double[] v, int position)
    {
        var result = (double[])v.Clone();
        var half = c.RotaryDims / 2;
        for (var i = 0; i < half; i++)
        {
            var theta = position * Math.Pow(c.RotaryBase, -2.0 * i / c.RotaryDims);
            result[i] = (v[i] * Math.Cos(theta)) - (v[i + half] * Math.Sin(theta));
            result[i + half] = (v[i + half] * Math.Cos(theta)) + (v[i] * Math.Sin(theta));
        }

        return result;
    }
}
