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
    /// <summary>Values per unit of parallel work: a tensor larger than this is filled by several threads.</summary>
    private const int ChunkValues = 1 << 20;

    public static float[] Values(TensorSpec spec, ulong seed, TensorDType dtype)
    {
        var values = new float[spec.ElementCount];
        Parallel.For(0, Chunks(spec), new ParallelOptions { MaxDegreeOfParallelism = Parallelism.MaxThreads }, chunk => FillChunk(spec, seed, dtype, values, chunk));
        return values;
    }

    /// <summary>
    /// The stream tensor <paramref name="spec"/> draws from: values 2k and 2k + 1 are its k-th pair of Gaussians
    /// (<see cref="SplitMix64.NextGaussianPair"/>, two outputs per pair). SplitMix64 can start anywhere in it,
    /// so a tensor's chunks fill in parallel with the serial values.
    /// </summary>
    public static SplitMix64 Stream(TensorSpec spec, ulong seed) => new(seed ^ Fnv1a(spec.Name));

    /// <summary>
    /// Every tensor's values in memory, in chunks of <see cref="ChunkValues"/> on every core (largest tensors
    /// first), with the values a serial fill gives: a 160M model's 8 s of Box–Muller on one core was most of
    /// `bt generate`'s start-up, and chunks keep a many-core machine from waiting on its two largest tensors.
    /// </summary>
    public static WeightSet Create(IReadOnlyList<TensorSpec> tensors, ulong seed, TensorDType dtype)
    {
        var buffers = tensors.ToDictionary(t => t.Name, t => new AlignedBuffer(t.ElementCount), StringComparer.Ordinal);
        var chunks = tensors.OrderByDescending(t => t.ElementCount).SelectMany(t => Enumerable.Range(0, Chunks(t)).Select(chunk => (Spec: t, Chunk: chunk)));
        Parallel.ForEach(
            Partitioner.Create(chunks, EnumerablePartitionerOptions.NoBuffering),
            new ParallelOptions { MaxDegreeOfParallelism = Parallelism.MaxThreads },
            work => FillChunk(work.Spec, seed, dtype, buffers[work.Spec.Name].Span, work.Chunk));
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

    private static int Chunks(TensorSpec spec) => (int)((spec.ElementCount + ChunkValues - 1) / ChunkValues);

    /// <summary>Values [chunk·ChunkValues, …) of a tensor, into the same positions of <paramref name="values"/>.</summary>
    private static void FillChunk(TensorSpec spec, ulong seed, TensorDType dtype, Span<float> values, int chunk)
    {
        var start = (long)chunk * ChunkValues;
        var end = Math.Min(spec.ElementCount, start + ChunkValues);
        var random = Stream(spec, seed).Skip((ulong)start); // start is even: pair start / 2, two outputs per pair
        var offset = spec.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1.0 : 0.0;
        var scale = spec.Shape.Length == 1 ? 0.1 : 1.0 / Math.Sqrt(spec.ElementCount / spec.Shape[0]);
        for (var i = start; i < end; i += 2)
        {
            var (first, second) = random.NextGaussianPair();
            values[(int)i] = TensorDTypes.Round((float)(offset + (scale * first)), dtype);
            if (i + 1 < end)
            {
                values[(int)i + 1] = TensorDTypes.Round((float)(offset + (scale * second)), dtype);
            }
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

    /// <summary>The step the state takes per output (the golden ratio in 64 bits).</summary>
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    public SplitMix64(ulong seed) => state = seed;

    /// <summary>This generator as it will be after <paramref name="outputs"/> more calls to <see cref="Next"/> (the state is a counter).</summary>
    public readonly SplitMix64 Skip(ulong outputs) => new(unchecked(state + (outputs * Gamma)));

    public ulong Next()
    {
        var z = state += Gamma;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>
    /// Two independent standard normals by Box–Muller, the cosine and the sine output of one radius and angle:
    /// one logarithm, square root and SinCos per two values. The angle's sine and cosine are single precision,
    /// like the weights they become (the radius, whose logarithm sets the tails, stays double): drawing one
    /// value per pair in double precision made a 1.2B-parameter model's random weights take a minute to start.
    /// </summary>
    public (double First, double Second) NextGaussianPair()
    {
        var radius = Math.Sqrt(-2.0 * Math.Log(1.0 - NextDouble()));
        var (sin, cos) = MathF.SinCos((float)(2 * Math.PI * NextDouble()));
        return (radius * cos, radius * sin);
    }
}
