using System.Collections.Concurrent;

namespace BlockTransformer.Runtime;

/// <summary>
/// Seeded random weights in the official layout, so every model can run without a download.
/// LayerNorm weights ~ 1 + 0.1·N(0,1), other vectors (biases) ~ 0.1·N(0,1), matrices ~ N(0,1)/√fan_in
/// (fan_in = everything after the first dim), which keeps activations and logits of order one.
/// Each tensor draws from its own stream (seed mixed with the tensor name), and values are rounded to the
/// requested dtype, so in-memory weights equal a file written with the same seed and dtype.
/// </summary>
public static class RandomWeights
{
    public static float[] Values(TensorSpec spec, ulong seed, TensorDType dtype)
    {
        var values = new float[spec.ElementCount];
        Fill(spec, seed, dtype, values);
        return values;
    }

    /// <summary>
    /// Every tensor's values in memory. Tensors have their own streams, so they fill in parallel with the
    /// values a serial fill gives: largest first, one at a time per thread, which keeps the two cores busy
    /// until the end (a 160M model's 8 s of Box–Muller on one core was most of `bt generate`'s start-up).
    /// </summary>
    public static WeightSet Create(IReadOnlyList<TensorSpec> tensors, ulong seed, TensorDType dtype)
    {
        var buffers = tensors.ToDictionary(t => t.Name, t => new AlignedBuffer(t.ElementCount), StringComparer.Ordinal);
        var largestFirst = Partitioner.Create(tensors.OrderByDescending(t => t.ElementCount), EnumerablePartitionerOptions.NoBuffering);
        Parallel.ForEach(largestFirst, new ParallelOptions { MaxDegreeOfParallelism = Parallelism.MaxThreads }, spec => Fill(spec, seed, dtype, buffers[spec.Name].Span));
        return new WeightSet(buffers);
    }

    public static void Write(string path, IReadOnlyList<TensorSpec> tensors, ulong seed, TensorDType dtype) =>
        SafeTensorsWriter.Write(path, tensors, InFileOrder(tensors, seed, dtype), dtype);

    /// <summary>
    /// Each tensor's values in file order, the next ones computed on the other cores while the writer stores
    /// one, so that at most a core count of tensors (plus the one being written) is in memory, not the model.
    /// </summary>
    private static IEnumerable<float[]> InFileOrder(IReadOnlyList<TensorSpec> tensors, ulong seed, TensorDType dtype)
    {
        var pending = new Queue<Task<float[]>>();
        var next = 0;
        while (next < tensors.Count || pending.Count > 0)
        {
            while (next < tensors.Count && pending.Count < Parallelism.MaxThreads)
            {
                var spec = tensors[next++];
                pending.Enqueue(Task.Run(() => Values(spec, seed, dtype)));
            }

            yield return pending.Dequeue().GetAwaiter().GetResult();
        }
    }

    private static void Fill(TensorSpec spec, ulong seed, TensorDType dtype, Span<float> values)
    {
        var random = new SplitMix64(seed ^ Fnv1a(spec.Name));
        var isNormWeight = spec.Name.EndsWith("norm.weight", StringComparison.Ordinal);
        var scale = spec.Shape.Length == 1 ? 0.1 : 1.0 / Math.Sqrt(spec.ElementCount / spec.Shape[0]);
        for (var i = 0; i < values.Length; i++)
        {
            var value = (isNormWeight ? 1.0 : 0.0) + (scale * random.NextGaussian());
            values[i] = TensorDTypes.Round((float)value, dtype);
        }
    }

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }
}

/// <summary>SplitMix64: a tiny, well-mixed PRNG whose sequence is fixed forever (unlike System.Random's).</summary>
public struct SplitMix64
{
    private ulong state;

    public SplitMix64(ulong seed) => state = seed;

    public ulong Next()
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal by Box–Muller.</summary>
    public double NextGaussian()
    {
        var u = 1.0 - NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2 * Math.PI * NextDouble());
    }
}
