using System;

namespace BlockTransformer.Generators.Emit;

// Attention: q·k scores as row tiles against key blocks, the softmax and its e^x, P·V, and rotary embedding.
internal sealed partial class KernelEmitter
{
    /// <summary>
    /// Attention scores of a group of query rows: q·k for every row against key blocks of 16 positions,
    /// which are [head_dim × 16] panels laid out like a linear layer's weights, so the row tiles of
    /// <see cref="Linear"/> apply: 12 rows × 2 blocks per step instead of one row × one block (whose
    /// four short FMA chains over head_dim inputs leave the FMA units mostly waiting). bf16 keys (kv_cache_dtype
    /// "bf16") are bf16 panels, widened in registers like bf16 weights.
    /// </summary>
    public string KeyScores(int headDim, bool bf16) => Request($"KeyScores{headDim}{(bf16 ? "Bf16" : string.Empty)}", (w, name) =>
    {
        w.Line($"/// <summary>scores[r·stride + t] = q_r·k_t for rows r &lt; count of a [count × {headDim}] query tile and positions t &lt; ends[r], rounded up to whole 16-position key blocks.</summary>");
        w.Line(Optimized);
        using (w.Block($"private static void {name}(float* queries, int count, int* ends, {Element(bf16)}* keys, float* scores, int stride)"))
        {
            w.Line($"const int HeadDim = {headDim}, Block = {PanelWidth};");
            w.Line("var last = 0;");
            using (w.Block("for (var k = 0; k < count; k++)"))
            {
                w.Line("last = Math.Max(last, ends[k]);");
            }

            w.Line();
            w.Line("// Pairs of key blocks outermost: every row tile reuses a pair from L1, so each key is read from");
            w.Line("// memory once for the group (a head's keys for 2048 positions, 512 KiB, do not stay in L2).");
            using (w.Block($"for (var t = 0; t < last; t += {PanelsPerTile} * Block)"))
            {
                w.Line($"{Element(bf16)}* pair = keys + ((long)t * HeadDim);");
                w.Line("var r = 0;");
                RowTiles(w, "count", rows =>
                {
                    if (rows == 1)
                    {
                        using (w.Block($"for (var b = t; b < Math.Min(ends[r], t + ({PanelsPerTile} * Block)); b += Block)"))
                        {
                            w.Line($"{Panel(1, 1, headDim, bf16)}(queries + (r * HeadDim), keys + ((long)b * HeadDim), null, scores + (r * stride) + b, 0, Block, false);");
                        }

                        return;
                    }

                    w.Line("var end = 0;");
                    using (w.Block($"for (var k = r; k < r + {rows}; k++)"))
                    {
                        w.Line("end = Math.Max(end, ends[k]);");
                    }

                    w.Line();
                    w.Line("// Both blocks while some row of the tile needs the second, else the first if one needs it.");
                    using (w.Block("if (t + Block < end)"))
                    {
                        w.Line($"{Panel(rows, PanelsPerTile, headDim, bf16)}(queries + (r * HeadDim), pair, null, scores + (r * stride) + t, stride, Block, false);");
                    }

                    using (w.Block("else if (t < end)"))
                    {
                        w.Line($"{Panel(rows, 1, headDim, bf16)}(queries + (r * HeadDim), pair, null, scores + (r * stride) + t, stride, Block, false);");
                    }
                });
            }
        }
    });

    /// <summary>
    /// In place: s[t] ← exp(s[t] − max) for t &lt; count (a numerically safe softmax numerator); returns Σ.
    /// The caller scales the queries by 1/√d_h, so the scores arrive scaled: one read-only pass for the
    /// max and one read-write pass for e^x, not a third that writes the scaled scores back. Kept out of line:
    /// inlined into the attention method, the e^x loop had too few free registers and reloaded ten constants
    /// from the stack on every vector (seen in DOTNET_JitDisasm).
    /// </summary>
    public string Softmax() => Request("Softmax", (w, name) =>
    {
        w.Line("/// <summary>s[t] ← exp(s[t] − max_t) for t &lt; count, vectorized; returns the sum (the softmax denominator).</summary>");
        w.Line("[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]");
        using (w.Block($"private static float {name}(float* s, int count)"))
        {
            w.Line("var max = float.NegativeInfinity;");
            w.Line("var t = 0;");
            foreach (var flavor in VectorFlavor.All)
            {
                var v = flavor.Type;
                using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                {
                    w.Line($"var m = {v}.Create(float.NegativeInfinity);");
                    using (w.Block($"for (; t + {flavor.Lanes} <= count; t += {flavor.Lanes})"))
                    {
                        w.Line($"m = {v}.MaxNative(m, {v}.Load(s + t));");
                    }

                    using (w.Block($"for (var lane = 0; lane < {flavor.Lanes}; lane++)"))
                    {
                        w.Line("max = MathF.Max(max, m.GetElement(lane));");
                    }
                }
            }

            using (w.Block("for (; t < count; t++)"))
            {
                w.Line("max = MathF.Max(max, s[t]);");
            }

            w.Line();
            w.Line("var sum = 0f;");
            w.Line("t = 0;");
            foreach (var flavor in VectorFlavor.All)
            {
                var v = flavor.Type;
                using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                {
                    w.Line($"var total = {flavor.Zero};");
                    w.Line($"var shift = {v}.Create(max);");
                    using (w.Block($"for (; t + {flavor.Lanes} <= count; t += {flavor.Lanes})"))
                    {
                        w.Line($"var e = {Exp(flavor)}({v}.Load(s + t) - shift);");
                        w.Line("e.Store(s + t);");
                        w.Line("total += e;");
                    }

                    w.Line($"sum += {v}.Sum(total);");
                }
            }

            using (w.Block("for (; t < count; t++)"))
            {
                w.Line("s[t] = MathF.Exp(s[t] - max);");
                w.Line("sum += s[t];");
            }

            w.Line();
            w.Line("return sum;");
        }
    });

    /// <summary>
    /// e^x on every lane, written out so that it inlines into its loop: the runtime's Vector512.Exp is a
    /// call that profiles showed running as unoptimized tier-0 code for much of a run (about 5% of a prefill).
    /// Cephes expf: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two for exactness), e^r by Cephes'
    /// degree-7 polynomial (relative error about 1e-7), 2^n put in the exponent bits.
    /// Inputs are clamped to [−87.3, 88.3], where 2^n stays a normal float: softmax and GELU feed it
    /// numbers ≤ 0, and e^−87.3 ≈ 1e−38 stands in for 0.
    /// </summary>
    private string Exp(VectorFlavor flavor) => Request($"Exp{flavor.Type}", (w, name) =>
    {
        var v = flavor.Type;
        w.Line($"/// <summary>e^x per lane (Cephes expf), for x in [−87.3, 88.3]; inputs outside are clamped.</summary>");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        using (w.Block($"private static {v}<float> {name}({v}<float> x)"))
        {
            w.Line($"x = {v}.Min({v}.Max(x, {v}.Create(-87.3f)), {v}.Create(88.3f));");
            w.Line($"var n = {v}.Round(x * 1.44269504f);");
            w.Line($"var r = {v}.{flavor.MultiplyAdd}(n, {v}.Create(-0.693359375f), x);");
            w.Line($"r = {v}.{flavor.MultiplyAdd}(n, {v}.Create(2.12194440e-4f), r);");
            w.Line($"var p = {v}.{flavor.MultiplyAdd}(r, {v}.Create(1.9875691500e-4f), {v}.Create(1.3981999507e-3f));");
            foreach (var c in new[] { "8.3334519073e-3f", "4.1665795894e-2f", "1.6666665459e-1f", "5.0000001201e-1f" })
            {
                w.Line($"p = {v}.{flavor.MultiplyAdd}(p, r, {v}.Create({c}));");
            }

            w.Line($"var er = {v}.{flavor.MultiplyAdd}(p, r * r, r) + {v}<float>.One;");
            w.Line($"var twoToN = {v}.ShiftLeft({v}.ConvertToInt32Native(n) + {v}.Create(127), 23).AsSingle();");
            w.Line("return er * twoToN;");
        }
    });

    /// <summary>
    /// y = scale · Σ_t p[t]·V[t] over rows of a fixed width spaced by a fixed stride (attention's P·V); bf16
    /// values are widened on load.
    /// </summary>
    public string WeightedSum(int width, int stride, bool bf16) => Request($"WeightedSum{width}Stride{stride}{(bf16 ? "Bf16" : string.Empty)}", (w, name) =>
    {
        w.Line($"/// <summary>y[0..{width}) (+)= scale · Σ_t p[t]·values[t·{stride} ..], accumulated in registers.</summary>");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        using (w.Block($"private static void {name}(float* y, {Element(bf16)}* values, float* p, int count, float scale, bool accumulate)"))
        {
            foreach (var flavor in VectorFlavor.All)
            {
                if (width % flavor.Lanes != 0)
                {
                    continue;
                }

                var v = flavor.Type;
                var vectors = width / flavor.Lanes;
                using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                {
                    w.Line(string.Join(" ", Each(vectors, k => $"var a{k} = {flavor.Zero};")));
                    using (w.Block("for (var t = 0; t < count; t++)"))
                    {
                        w.Line($"var weight = {v}.Create(p[t]);");
                        w.Line($"{Element(bf16)}* row = values + ((long)t * {stride});");
                        w.Line(string.Join(" ", Each(vectors, k => $"a{k} = {v}.{flavor.MultiplyAdd}(weight, {LoadFloats(flavor, $"row{Plus(k * flavor.Lanes)}", bf16)}, a{k});")));
                    }

                    w.Line(string.Join(" ", Each(vectors, k => $"(accumulate ? {v}.{flavor.MultiplyAdd}(a{k}, {v}.Create(scale), {v}.Load(y + {k * flavor.Lanes})) : a{k} * scale).Store(y + {k * flavor.Lanes});")));
                    w.Line("return;");
                }

                w.Line();
            }

            using (w.Block($"for (var i = 0; i < {width}; i++)"))
            {
                w.Line("var sum = 0f;");
                using (w.Block("for (var t = 0; t < count; t++)"))
                {
                    w.Line($"sum += p[t] * {Widened($"values[((long)t * {stride}) + i]", bf16)};");
                }

                w.Line("y[i] = accumulate ? y[i] + (sum * scale) : sum * scale;");
            }
        }
    });

    /// <summary>
    /// Rows of a value tile: as many query rows as keep 16 accumulators for a value row of
    /// <paramref name="width"/> (8 for head_dim 32, 4 for 64), or 1 when one row already needs them.
    /// </summary>
    public static int WeightedSumRows(int width) => Math.Max(1, Math.Min(8, 16 / Math.Max(1, width / PanelWidth)));

    /// <summary>
    /// <see cref="WeightedSum"/> for <paramref name="rows"/> query rows at once: each step loads a value row
    /// once and broadcasts every row's probability into it. One row at a time, a step is only width / 16
    /// FMA chains, so it waits on FMA latency (2 chains for head_dim 32). Other vector widths run the rows one by one.
    /// </summary>
    public string WeightedSums(int rows, int width, int stride)
    {
        var one = WeightedSum(width, stride, bf16: false);
        return Request($"WeightedSums{rows}Row{width}Stride{stride}", (w, name) =>
        {
            w.Line($"/// <summary>y[r·yStride + 0..{width}) (+)= scale[r] · Σ_t p[r·pStride + t]·values[t·{stride} ..] for r &lt; {rows}.</summary>");
            w.Line("[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]");
            using (w.Block($"private static void {name}(float* y, int yStride, float* values, float* p, int pStride, int count, float* scale, bool accumulate)"))
            {
                var flavor = VectorFlavor.All[0];
                var v = flavor.Type;
                var vectors = width / flavor.Lanes;
                if (width % flavor.Lanes == 0 && rows * vectors <= AccumulatorRegisters(flavor))
                {
                    using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                    {
                        for (var r = 0; r < rows; r++)
                        {
                            w.Line(string.Join(" ", Each(vectors, k => $"var a{r}_{k} = {flavor.Zero};")));
                        }

                        using (w.Block("for (var t = 0; t < count; t++)"))
                        {
                            w.Line($"float* row = values + ((long)t * {stride});");
                            w.Line(string.Join(" ", Each(vectors, k => $"var v{k} = {v}.Load(row{Plus(k * flavor.Lanes)});")));
                            for (var r = 0; r < rows; r++)
                            {
                                w.Line($"var p{r} = {v}.Create(p[{(r == 0 ? string.Empty : Offset(r, "pStride") + " + ")}t]);");
                                w.Line(string.Join(" ", Each(vectors, k => $"a{r}_{k} = {v}.{flavor.MultiplyAdd}(p{r}, v{k}, a{r}_{k});")));
                            }
                        }

                        for (var r = 0; r < rows; r++)
                        {
                            w.Line($"float* y{r} = y{(r == 0 ? string.Empty : " + " + Offset(r, "yStride"))}; var s{r} = {v}.Create(scale[{r}]);");
                            foreach (var store in Each(vectors, k => $"(accumulate ? {v}.{flavor.MultiplyAdd}(a{r}_{k}, s{r}, {v}.Load(y{r}{Plus(k * flavor.Lanes)})) : a{r}_{k} * s{r}).Store(y{r}{Plus(k * flavor.Lanes)});"))
                            {
                                w.Line(store);
                            }
                        }

                        w.Line("return;");
                    }

                    w.Line();
                }

                using (w.Block($"for (var r = 0; r < {rows}; r++)"))
                {
                    w.Line($"{one}(y + ((long)r * yStride), values, p + ((long)r * pStride), count, scale[r], accumulate);");
                }
            }
        });
    }

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
}
