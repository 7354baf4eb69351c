namespace BlockTransformer.Tests.Reference;

/// <summary>
/// Plain double-precision building blocks for the reference models: readable loops, no SIMD, nothing
/// shared with the generated code or the runtime kernels.
/// </summary>
internal static class ReferenceMath
{
    public static double[] LayerNorm(double[] x, float[] weight, float[] bias, double eps)
    {
        var mean = x.Average();
        var variance = x.Select(v => (v - mean) * (v - mean)).Average();
        var scale = 1 / Math.Sqrt(variance + eps);
        return x.Select((v, i) => ((v - mean) * scale * weight[i]) + bias[i]).ToArray();
    }

    /// <summary>y = W·x + b with W stored [outputs, inputs] row-major (PyTorch Linear).</summary>
    public static double[] Linear(double[] x, float[] weight, float[]? bias, int outputs)
    {
        var inputs = x.Length;
        var y = new double[outputs];
        for (var o = 0; o < outputs; o++)
        {
            double sum = bias?[o] ?? 0;
            for (var i = 0; i < inputs; i++)
            {
                sum += weight[(o * inputs) + i] * x[i];
            }

            y[o] = sum;
        }

        return y;
    }

    /// <summary>One query head over its cached positions: softmax(q·kᵀ/√d)·V, with the max subtracted before exp.</summary>
    public static double[] Attention(double[] q, IReadOnlyList<double[]> keys, IReadOnlyList<double[]> values)
    {
        var scores = keys.Select(k => q.Zip(k, (u, v) => u * v).Sum() / Math.Sqrt(q.Length)).ToArray();
        var max = scores.Max();
        var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
        var total = weights.Sum();
        var output = new double[values[0].Length];
        for (var s = 0; s < values.Count; s++)
        {
            for (var i = 0; i < output.Length; i++)
            {
                output[i] += weights[s] / total * values[s][i];
            }
        }

        return output;
    }

    public static double[] Row(float[] table, int row, int width) =>
        Enumerable.Range(0, width).Select(i => (double)table[(row * width) + i]).ToArray();

    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    /// <summary>erf by its Taylor series for |x| ≤ 2.5 and by the erfc continued fraction beyond.</summary>
    public static double Erf(double x)
    {
        var a = Math.Abs(x);
        double result;
        if (a <= 2.5)
        {
            double term = a, sum = a;
            for (var n = 1; n < 100; n++)
            {
                term *= -a * a / n;
                sum += term / ((2 * n) + 1);
            }

            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            var fraction = a;
            for (var n = 80; n >= 1; n--)
            {
                fraction = a + (n / 2.0 / fraction);
            }

            result = 1 - (Math.Exp(-a * a) / Math.Sqrt(Math.PI) / fraction);
        }

        return x < 0 ? -result : result;
    }

    public static int ArgMax(double[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
