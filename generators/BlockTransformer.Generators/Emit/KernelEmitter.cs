using System;
using System.Collections.Generic;
using BlockTransformer.Generators.Helpers;

namespace BlockTransformer.Generators.Emit;

/// <summary>A SIMD width the emitted kernels are written for; the JIT keeps only the accelerated branch.</summary>
internal sealed record VectorFlavor(string Type, int Lanes)
{
    public static readonly VectorFlavor[] All = { new("Vector512", 16), new("Vector256", 8) };

    public string Zero => $"{Type}<float>.Zero";
}

/// <summary>
/// Emits shape-specialized kernels on request, once per distinct shape: callers ask for a kernel by
/// its sizes and get the method name back; <see cref="EmitAll"/> writes every requested method.
/// Each kernel has a Vector512 path, a Vector256 path and a scalar path, with a scalar tail only when
/// the size is not a multiple of the vector width.
/// </summary>
internal sealed class KernelEmitter
{
    private readonly Dictionary<string, Action<SourceWriter>> kernels = new();
    private readonly List<string> order = new();

    /// <summary>y[r, o] (+)= b[o] + Σ_i W[o, i]·x[r, i], W stored [Out, In] as in the checkpoint.</summary>
    public string Linear(int outputs, int inputs)
    {
        var dot = Dot(inputs);
        return Request($"Linear{outputs}x{inputs}", (w, name) =>
        {
            w.Line($"/// <summary>y[r, o] (+)= b[o] + Σ_i W[o, i]·x[r, i] with W [{outputs}, {inputs}] as stored; b may be null (LM head).</summary>");
            using (w.Block($"private static void {name}(float* x, int rows, float* w, float* b, float* y, bool accumulate)"))
            {
                w.Line($"const int Out = {outputs}, In = {inputs};");
                w.Line("// Split outputs across cores; within a thread, tile rows so a weight row is reused from L1.");
                using (w.Block("Parallelism.For(Out, (long)rows * In, (start, end) =>", "});"))
                {
                    using (w.Block("for (var r0 = 0; r0 < rows; r0 += RowTile)"))
                    {
                        w.Line("var r1 = Math.Min(rows, r0 + RowTile);");
                        using (w.Block("for (var o = start; o < end; o++)"))
                        {
                            w.Line("float* wo = w + ((long)o * In);");
                            w.Line("var bias = b == null ? 0f : b[o];");
                            using (w.Block("for (var r = r0; r < r1; r++)"))
                            {
                                w.Line($"var value = bias + {dot}(wo, x + ((long)r * In));");
                                w.Line("float* target = y + ((long)r * Out) + o;");
                                w.Line("*target = accumulate ? *target + value : value;");
                            }
                        }
                    }
                }
            }
        });
    }

    /// <summary>Σ a[i]·b[i] over a fixed length, with several accumulators to hide FMA latency.</summary>
    public string Dot(int length) => Reduction(
        $"Dot{length}",
        length,
        $"Σ a[i]·b[i] for i &lt; {length}",
        "float* a, float* b",
        prologue: null,
        (v, at, acc) => $"{v}.FusedMultiplyAdd({v}.Load(a + {at}), {v}.Load(b + {at}), {acc})",
        at => $"a[{at}] * b[{at}]");

    /// <summary>Σ x[i] over a fixed length (LayerNorm mean).</summary>
    public string Sum(int length) => Reduction(
        $"Sum{length}",
        length,
        $"Σ x[i] for i &lt; {length}",
        "float* x",
        prologue: null,
        (v, at, acc) => $"{acc} + {v}.Load(x + {at})",
        at => $"x[{at}]");

    /// <summary>Σ (x[i] − mean)² over a fixed length (LayerNorm variance, two-pass for accuracy).</summary>
    public string SquaredDeviation(int length) => Reduction(
        $"SquaredDeviation{length}",
        length,
        $"Σ (x[i] − mean)² for i &lt; {length}",
        "float* x, float mean",
        prologue: v => $"var m = {v}.Create(mean);",
        (v, at, acc) => $"{v}.FusedMultiplyAdd({v}.Load(x + {at}) - m, {v}.Load(x + {at}) - m, {acc})",
        at => $"(x[{at}] - mean) * (x[{at}] - mean)");

    /// <summary>
    /// A sum over a fixed length: per vector width, up to four accumulators over whole vectors, then
    /// the remaining whole vectors, then a scalar tail only when the length needs one.
    /// </summary>
    private string Reduction(string name, int length, string summary, string parameters, Func<string, string>? prologue, Func<string, string, string, string> accumulate, Func<string, string> scalarTerm) =>
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
                                w.Line($"acc{k} = {accumulate(v, k == 0 ? "i" : $"i + {k * flavor.Lanes}", "acc" + k)};");
                            }
                        }

                        for (var i = mainEnd; i + flavor.Lanes <= length; i += flavor.Lanes)
                        {
                            w.Line($"acc0 = {accumulate(v, i.ToString(System.Globalization.CultureInfo.InvariantCulture), "acc0")};");
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

    /// <summary>y[i] += s·x[i] over a fixed length (attention's weighted sum of values).</summary>
    public string AddScaled(int length) => Request($"AddScaled{length}", (w, name) =>
    {
        w.Line($"/// <summary>y[i] += s·x[i] for i &lt; {length}.</summary>");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        using (w.Block($"private static void {name}(float* y, float* x, float s)"))
        {
            VectorLoops(w, length, (flavor, i) =>
                $"{flavor.Type}.FusedMultiplyAdd({flavor.Type}.Create(s), {flavor.Type}.Load(x + {i}), {flavor.Type}.Load(y + {i})).Store(y + {i});",
                "y[i] += s * x[i];");
        }
    });

    /// <summary>LayerNorm over rows of a fixed width: (x - mean) / √(var + eps) · w + b; y may alias x.</summary>
    public string LayerNorm(int width)
    {
        var sum = Sum(width);
        var deviation = SquaredDeviation(width);
        return Request($"LayerNorm{width}", (w, name) =>
        {
            w.Line($"/// <summary>y = (x - mean) / √(var + eps) · weight + bias over rows of {width}; y may be x.</summary>");
            using (w.Block($"private static void {name}(float* x, int rows, float* weight, float* bias, float* y, float eps)"))
            {
                w.Line($"const int Width = {width};");
                using (w.Block("for (var r = 0; r < rows; r++)"))
                {
                    w.Line("float* xr = x + ((long)r * Width);");
                    w.Line("float* yr = y + ((long)r * Width);");
                    w.Line($"var mean = {sum}(xr) / Width;");
                    w.Line($"var scale = 1f / MathF.Sqrt(({deviation}(xr, mean) / Width) + eps);");
                    VectorLoops(w, width, (flavor, i) =>
                        $"(({flavor.Type}.Load(xr + {i}) - {flavor.Type}.Create(mean)) * scale * {flavor.Type}.Load(weight + {i}) + {flavor.Type}.Load(bias + {i})).Store(yr + {i});",
                        "yr[i] = ((xr[i] - mean) * scale * weight[i]) + bias[i];");
                }
            }
        });
    }

    /// <summary>Exact GELU in place over rows of a fixed width: x/2 · (1 + erf(x/√2)).</summary>
    public string Gelu(int width) => Request($"Gelu{width}", (w, name) =>
    {
        w.Line($"/// <summary>x ← x/2 · (1 + erf(x/√2)) over rows of {width} (exact GELU; erf by Abramowitz–Stegun 7.1.26).</summary>");
        using (w.Block($"private static void {name}(float* x, int rows)"))
        {
            w.Line($"var count = (long)rows * {width};");
            w.Line("long i = 0;");
            foreach (var flavor in VectorFlavor.All)
            {
                var v = flavor.Type;
                using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                {
                    using (w.Block($"for (; i + {flavor.Lanes} <= count; i += {flavor.Lanes})"))
                    {
                        w.Line($"var value = {v}.Load(x + i);");
                        w.Line($"var z = {v}.Abs(value * Gelu.InvSqrt2);");
                        w.Line($"var t = {v}<float>.One / ({v}<float>.One + (z * Gelu.P));");
                        w.Line($"var poly = (((((((((t * Gelu.A5) + {v}.Create(Gelu.A4)) * t) + {v}.Create(Gelu.A3)) * t) + {v}.Create(Gelu.A2)) * t) + {v}.Create(Gelu.A1)) * t);");
                        w.Line($"var erf = {v}<float>.One - (poly * {v}.Exp(-(z * z)));");
                        w.Line($"erf = {v}.ConditionalSelect({v}.LessThan(value, {v}<float>.Zero), -erf, erf);");
                        w.Line($"(value * 0.5f * ({v}<float>.One + erf)).Store(x + i);");
                    }
                }

                w.Line();
            }

            using (w.Block("for (; i < count; i++)"))
            {
                w.Line("x[i] = Gelu.Exact(x[i]);");
            }
        }
    });

    /// <summary>NeoX rotate-half on the first r dims of one head: (u, w) → (u·cos − w·sin, w·cos + u·sin).</summary>
    public string RotateHalf(int rotaryDims) => Request($"RotateHalf{rotaryDims}", (w, name) =>
    {
        w.Line($"/// <summary>RoPE on dims [0, {rotaryDims}) of one head: dim i pairs with i + {rotaryDims / 2} (rotate-half).</summary>");
        using (w.Block($"private static void {name}(float* v, float* cos, float* sin)"))
        {
            w.Line($"const int Half = {rotaryDims / 2};");
            using (w.Block("for (var i = 0; i < Half; i++)"))
            {
                w.Line("var u = v[i];");
                w.Line("var w = v[i + Half];");
                w.Line("v[i] = (u * cos[i]) - (w * sin[i]);");
                w.Line("v[i + Half] = (w * cos[i]) + (u * sin[i]);");
            }
        }
    });

    public void EmitAll(SourceWriter writer)
    {
        foreach (var name in order)
        {
            writer.Line();
            kernels[name](writer);
        }
    }

    private string Request(string name, Action<SourceWriter, string> emit)
    {
        if (!kernels.ContainsKey(name))
        {
            kernels.Add(name, w => emit(w, name));
            order.Add(name);
        }

        return name;
    }

    /// <summary>Vector loops over [0, length) for each flavor, then a scalar loop for the rest.</summary>
    private static void VectorLoops(SourceWriter w, int length, Func<VectorFlavor, string, string> vectorStatement, string scalarStatement)
    {
        w.Line("var i = 0;");
        foreach (var flavor in VectorFlavor.All)
        {
            if (length / flavor.Lanes == 0)
            {
                continue;
            }

            using (w.Block($"if ({flavor.Type}.IsHardwareAccelerated)"))
            {
                using (w.Block($"for (; i + {flavor.Lanes} <= {length}; i += {flavor.Lanes})"))
                {
                    w.Line(vectorStatement(flavor, "i"));
                }
            }
        }

        using (w.Block($"for (; i < {length}; i++)"))
        {
            w.Line(scalarStatement);
        }
    }

    private static void ScalarTail(SourceWriter w, int start, int length, string statement)
    {
        if (start < length)
        {
            using (w.Block($"for (var i = {start}; i < {length}; i++)"))
            {
                w.Line(statement);
            }
        }
    }

    private static IEnumerable<string> Names(string prefix, int count)
    {
        for (var k = 0; k < count; k++)
        {
            yield return prefix + k;
        }
    }
}
