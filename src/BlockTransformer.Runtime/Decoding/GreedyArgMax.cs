using System.Numerics;

namespace BlockTransformer.Runtime;

/// <summary>
/// Greedy decoding without logits: the generated LM head folds each block of outputs a thread has just
/// computed (still in its cache) into each row's best (logit, id), instead of writing rows × vocab logits
/// to memory for a sampler to read back. A row's best is one 64-bit key, so threads merge their blocks
/// with a compare-and-swap: high half the logit's bits made order-preserving, low half ~id, so the
/// larger key is the larger logit and, between equal logits, the lower id (the <see cref="Sampler.ArgMax"/> rule).
/// NaN logits are skipped; a row of NaNs yields id 0.
/// </summary>
public static unsafe class GreedyArgMax
{
    private const long None = long.MinValue;

    [ThreadStatic]
    private static AlignedBuffer? keys;

    /// <summary>The calling thread's key per row, reset to "none"; pass it to the kernel, then to <see cref="End"/>.</summary>
    public static long* Begin(int rows)
    {
        if (keys is null || keys.Length < 2L * rows)
        {
            keys?.Dispose();
            keys = new AlignedBuffer(2L * Math.Max(rows, 64));
        }

        var best = (long*)keys.Pointer;
        new Span<long>(best, rows).Fill(None);
        return best;
    }

    /// <summary>
    /// Folds a block of <paramref name="rows"/> rows × <paramref name="width"/> outputs at
    /// <paramref name="stride"/>, whose first column is id <paramref name="firstId"/>, into <paramref name="best"/>.
    /// </summary>
    public static void Fold(float* block, int rows, int stride, int width, int firstId, long* best)
    {
        for (var r = 0; r < rows; r++)
        {
            float* row = block + ((long)r * stride);
            var i = FirstLargest(row, width);
            if (i >= 0)
            {
                Merge(best + r, Key(row[i], firstId + i));
            }
        }
    }

    /// <summary>Each row's id from its key.</summary>
    public static void End(long* best, int rows, int* tokens)
    {
        for (var r = 0; r < rows; r++)
        {
            tokens[r] = best[r] == None ? 0 : ~(int)(uint)best[r];
        }
    }

    /// <summary>The first position of the largest non-NaN value (a vector pass for the maximum, then <see cref="IndexOf"/>), or -1 if all are NaN.</summary>
    /// <remarks>
    /// <see cref="Vector{T}"/>, not a fixed width, so that ARM64 (NEON) and SSE-only x64 get 128-bit vectors
    /// instead of the scalar loop; with AVX2, and by default with AVX-512, it is 256 bits.
    /// </remarks>
    internal static int FirstLargest(float* row, int width)
    {
        var max = float.NegativeInfinity;
        var i = 0;
        var lanes = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && width >= lanes)
        {
            // Four running maxima over a block of hundreds of outputs: with one, each max would wait for
            // the one before it (a loop-carried chain of compare, select and max).
            var m0 = new Vector<float>(float.NegativeInfinity);
            var (m1, m2, m3) = (m0, m0, m0);
            for (; i <= width - (4 * lanes); i += 4 * lanes)
            {
                m0 = MaxSkippingNaN(m0, Vector.Load(row + i));
                m1 = MaxSkippingNaN(m1, Vector.Load(row + i + lanes));
                m2 = MaxSkippingNaN(m2, Vector.Load(row + i + (2 * lanes)));
                m3 = MaxSkippingNaN(m3, Vector.Load(row + i + (3 * lanes)));
            }

            for (; i <= width - lanes; i += lanes)
            {
                m0 = MaxSkippingNaN(m0, Vector.Load(row + i));
            }

            var all = Vector.Max(Vector.Max(m0, m1), Vector.Max(m2, m3));
            for (var lane = 0; lane < lanes; lane++)
            {
                max = Math.Max(max, all[lane]);
            }
        }

        for (; i < width; i++)
        {
            max = row[i] > max ? row[i] : max;
        }

        return IndexOf(row, width, max); // -1: every value is NaN
    }

    /// <summary>The first position of <paramref name="value"/> in <paramref name="width"/> values at <paramref name="row"/> (a vector compare), or -1.</summary>
    private static int IndexOf(float* row, int width, float value)
    {
        var lanes = Vector<float>.Count;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= width - lanes; i += lanes)
            {
                var lane = Vector.IndexOf(Vector.Load(row + i), value);
                if (lane >= 0)
                {
                    return i + lane;
                }
            }
        }

        for (; i < width; i++)
        {
            if (row[i] == value)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Lane-wise max of a running maximum (never NaN) and new values, keeping the running value where a new one is NaN.</summary>
    private static Vector<float> MaxSkippingNaN(Vector<float> running, Vector<float> values) =>
        Vector.Max(running, Vector.ConditionalSelect(Vector.Equals(values, values), values, running));

    private static long Key(float logit, int id)
    {
        var bits = BitConverter.SingleToInt32Bits(logit);
        var ordered = bits ^ ((bits >> 31) & int.MaxValue); // negative floats: larger magnitude → smaller int
        return ((long)ordered << 32) | (uint)~id;
    }

    private static void Merge(long* target, long key)
    {
        var current = Volatile.Read(ref *target);
        while (key > current)
        {
            var seen = Interlocked.CompareExchange(ref *target, key, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
