using System.Runtime.Intrinsics;

namespace BlockTransformer.Runtime;

/// <summary>
/// Picks a token from logits: greedy (argmax, lowest id on ties) or temperature → top-k → top-p sampling.
/// Each sequence has its own seeded stream (seed, sequence index), so a prompt samples the same tokens
/// whatever else is in the batch. Buffers are allocated once per sampler.
/// </summary>
public sealed class Sampler
{
    private static readonly Comparer<float> Descending = Comparer<float>.Create((a, b) => b.CompareTo(a));

    private readonly SamplingOptions options;
    private readonly int[] order;
    private readonly float[] probabilities;
    private SplitMix64 random;

    public Sampler(SamplingOptions options, int vocabSize, int sequence)
    {
        options.Validate();
        this.options = options;
        order = new int[vocabSize];
        probabilities = new float[vocabSize];
        random = new SplitMix64(options.Seed ^ (0x5851F42D4C957F2DUL * (ulong)(sequence + 1)));
    }

    /// <summary>
    /// Index of the largest logit, the lowest one on ties. Two vector passes (the maximum, then its first
    /// position): at batch 2048 the LM head hands over 100 M logits per step, and a scalar scan of
    /// them would cost as much as a decoder layer. Vector256, so NativeAOT's x86-64-v3 build runs it too.
    /// </summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var lanes = Vector256<float>.Count;
        if (!Vector256.IsHardwareAccelerated || logits.Length < 2 * lanes)
        {
            return ScalarArgMax(logits);
        }

        var max = Vector256.Create(logits[..lanes]);
        var i = lanes;
        for (; i <= logits.Length - lanes; i += lanes)
        {
            max = Vector256.Max(max, Vector256.Create(logits.Slice(i, lanes)));
        }

        var best = Vector256.Max(max, Vector256.Create(logits[^lanes..]));
        var value = best[0];
        for (var lane = 1; lane < lanes; lane++)
        {
            value = Math.Max(value, best[lane]);
        }

        // NaN logits: no lane compares equal to the maximum; keep the scalar rule.
        var at = IndexOf(logits, value);
        return at >= 0 ? at : ScalarArgMax(logits);
    }

    /// <summary>The first position of <paramref name="value"/> in <paramref name="values"/> (a vector compare), or -1.</summary>
    internal static int IndexOf(ReadOnlySpan<float> values, float value)
    {
        var lanes = Vector256<float>.Count;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var target = Vector256.Create(value);
            for (; i <= values.Length - lanes; i += lanes)
            {
                var hits = Vector256.Equals(Vector256.Create(values.Slice(i, lanes)), target).ExtractMostSignificantBits();
                if (hits != 0)
                {
                    return i + System.Numerics.BitOperations.TrailingZeroCount(hits);
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if (values[i] == value)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// The first position of the largest non-NaN logit, 0 when every one is NaN: the fused LM head's rule
    /// (GreedyArgMax) and the GPU's. A NaN at position 0 used to stick, since nothing compares greater than it.
    /// </summary>
    private static int ScalarArgMax(ReadOnlySpan<float> logits)
    {
        var best = -1;
        for (var i = 0; i < logits.Length; i++)
        {
            if (!float.IsNaN(logits[i]) && (best < 0 || logits[i] > logits[best]))
            {
                best = i;
            }
        }

        return Math.Max(best, 0);
    }

    public int Sample(ReadOnlySpan<float> logits)
    {
        if (options.Greedy)
        {
            return ArgMax(logits);
        }

        // Sort ids by logit, highest first; top-k and top-p then keep a prefix of this order.
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
            probabilities[i] = logits[i];
        }

        Array.Sort(probabilities, order, Descending);
        var keep = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
        var max = probabilities[0];
        double total = 0;
        for (var i = 0; i < keep; i++)
        {
            probabilities[i] = MathF.Exp((probabilities[i] - max) / options.Temperature);
            total += probabilities[i];
        }

        if (options.TopP < 1)
        {
            double cumulative = 0;
            for (var i = 0; i < keep; i++)
            {
                cumulative += probabilities[i] / total;
                if (cumulative >= options.TopP)
                {
                    keep = i + 1;
                    break;
                }
            }

            total = 0;
            for (var i = 0; i < keep; i++)
            {
                total += probabilities[i];
            }
        }

        var target = random.NextDouble() * total;
        for (var i = 0; i < keep; i++)
        {
            target -= probabilities[i];
            if (target < 0)
            {
                return order[i];
            }
        }

        return order[keep - 1];
    }
}
