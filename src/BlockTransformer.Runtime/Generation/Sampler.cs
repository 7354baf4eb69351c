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
    /// Index of the largest logit, the lowest one on ties, NaN logits skipped (id 0 when every one is NaN):
    /// the fused LM head's rule, and the GPU's, computed by the same vector pass (<see cref="GreedyArgMax.FirstLargest"/>),
    /// since at batch 2048 the LM head hands over 100 M logits per step and a scalar scan of them would cost
    /// as much as a decoder layer.
    /// </summary>
    public static unsafe int ArgMax(ReadOnlySpan<float> logits)
    {
        fixed (float* values = logits)
        {
            return Math.Max(GreedyArgMax.FirstLargest(values, logits.Length), 0);
        }
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
