using System;

namespace BlockTransformer.Generators.Emit;

// LayerNorm: the fixed-length sums it needs (mean, then the squared deviations from it) and the kernel itself.
internal sealed partial class KernelEmitter
{
    /// <summary>Σ x[i] over a fixed length (LayerNorm mean).</summary>
    public string Sum(int length) => Reduction(
        $"Sum{length}",
        length,
        $"Σ x[i] for i &lt; {length}",
        "float* x",
        prologue: null,
        (f, at, acc) => $"{acc} + {f.Type}.Load(x + {at})",
        at => $"x[{at}]");

    /// <summary>Σ (x[i] − mean)² over a fixed length (LayerNorm variance, two-pass for accuracy).</summary>
    public string SquaredDeviation(int length) => Reduction(
        $"SquaredDeviation{length}",
        length,
        $"Σ (x[i] − mean)² for i &lt; {length}",
        "float* x, float mean",
        prologue: v => $"var m = {v}.Create(mean);",
        (f, at, acc) => $"{f.Type}.{f.MultiplyAdd}({f.Type}.Load(x + {at}) - m, {f.Type}.Load(x + {at}) - m, {acc})",
        at => $"(x[{at}] - mean) * (x[{at}] - mean)");

    /// <summary>
    /// A sum over a fixed length: per vector width, up to four accumulators over whole vectors, then
    /// the remaining whole vectors, then a scalar tail only when the length needs one.
    /// </summary>
    private string Reduction(string name, int length, string summary, string parameters, Func<string, string>? prologue, Func<VectorFlavor, string, string, string> accumulate, Func<string, string> scalarTerm) =>
        Request(name, (w, _) =>
        {
            w.Line($"/// <summary>{summary}.</summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (w.Block($"private static float {name}({parameters})"))
            {
                foreach (var flavor in VectorFlavor.All)
                {
                    var vectors = length / flavor.Lanes;
                    if (vectors == 0)
                    {
                        continue;
                    }

                    var v = flavor.Type;
                    var accumulators = Math.Min(4, vectors);
                    var step = accumulators * flavor.Lanes;
                    var mainEnd = length / step * step;
                    using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                    {
                        if (prologue is not null)
                        {
                            w.Line(prologue(v));
                        }

                        for (var k = 0; k < accumulators; k++)
                        {
                            w.Line($"var acc{k} = {flavor.Zero};");
                        }

                        using (w.Block($"for (var i = 0; i < {mainEnd}; i += {step})"))
                        {
                            for (var k = 0; k < accumulators; k++)
                            {
                                w.Line($"acc{k} = {accumulate(flavor, k == 0 ? "i" : $"i + {k * flavor.Lanes}", "acc" + k)};");
                            }
                        }

                        for (var i = mainEnd; i + flavor.Lanes <= length; i += flavor.Lanes)
                        {
                            w.Line($"acc0 = {accumulate(flavor, i.ToString(System.Globalization.CultureInfo.InvariantCulture), "acc0")};");
                        }

                        w.Line($"var sum = {v}.Sum({string.Join(" + ", Names("acc", accumulators))});");
                        ScalarTail(w, vectors * flavor.Lanes, length, $"sum += {scalarTerm("i")};");
                        w.Line("return sum;");
                    }

                    w.Line();
                }

                w.Line("var total = 0f;");
                ScalarTail(w, 0, length, $"total += {scalarTerm("i")};");
                w.Line("return total;");
            }
        });

    /// <summary>
    /// LayerNorm over rows of a fixed width: (x - mean) / √(var + eps) · w + b; y may alias x. Rows are
    /// independent, so prefill's hundreds of rows are split across cores like the linear layers around it.
    /// </summary>
    public string LayerNorm(int width)
    {
        var sum = Sum(width);
        var deviation = SquaredDeviation(width);
        return Request($"LayerNorm{width}", (w, name) =>
        {
            w.Line($"/// <summary>y = (x - mean) / √(var + eps) · weight + bias over rows of {width}; y may be x.</summary>");
            ParallelKernel(
                w,
                name,
                "float* x, int rows, float* weight, float* bias, float* y, float eps",
                fields: ["public float* X, Weight, Bias, Y;", "public float Eps;"],
                "X = x, Weight = weight, Bias = bias, Y = y, Eps = eps",
                $"rows, {width}",
                "Rows",
                () =>
                {
                    w.Line($"const int Width = {width};");
                    w.Line("float* weight = Weight, bias = Bias;");
                    using (w.Block("for (var r = start; r < end; r++)"))
                    {
                        w.Line("float* xr = X + ((long)r * Width);");
                        w.Line("float* yr = Y + ((long)r * Width);");
                        w.Line($"var mean = {sum}(xr) / Width;");
                        w.Line($"var scale = 1f / MathF.Sqrt(({deviation}(xr, mean) / Width) + Eps);");
                        VectorLoops(w, width, (flavor, i) =>
                            $"(({flavor.Type}.Load(xr + {i}) - {flavor.Type}.Create(mean)) * scale * {flavor.Type}.Load(weight + {i}) + {flavor.Type}.Load(bias + {i})).Store(yr + {i});",
                            "yr[i] = ((xr[i] - mean) * scale * weight[i]) + bias[i];");
                    }
                });
        });
    }
}
