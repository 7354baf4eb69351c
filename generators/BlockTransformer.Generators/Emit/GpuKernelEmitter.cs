using System;
using System.Collections.Generic;
using System.Linq;
using BlockTransformer.Generators.Helpers;
using BlockTransformer.Generators.Model;

namespace BlockTransformer.Generators.Emit;

/// <summary>
/// Emits ILGPU kernels on request, once per distinct shape, every size a literal or a model constant.
/// All kernels are implicitly grouped (one thread per output element or row): ILGPU picks the group
/// size, and the same code runs on CUDA and on the CPU simulator without shared memory or warp shuffles.
/// A request returns the name of the launcher field; <see cref="EmitFields"/>, <see cref="EmitLoads"/> and
/// <see cref="EmitKernels"/> write the fields, their loading and the kernel methods.
/// </summary>
internal sealed class GpuKernelEmitter
{
    /// <summary>Cache slots one long-attention thread covers before its partial result is merged.</summary>
    public const int AttentionChunk = 64;

    /// <summary>Logits one sampling thread scans for its top-k candidates.</summary>
    public const int SampleChunk = 1024;

    /// <summary>Rows per linear-kernel thread; equals GpuModel.RowTile, to which device buffers are padded.</summary>
    public const int Tile = 8;

    private readonly List<Kernel> kernels = new();

    private sealed record Kernel(string Name, string Index, string[] Parameters, Action<SourceWriter> Body, string Summary)
    {
        public string Field => char.ToLowerInvariant(Name[0]) + Name.Substring(1);

        public string Types => string.Join(", ", new[] { Index }.Concat(Parameters.Select(p => p.Substring(0, p.LastIndexOf(' ')))));
    }

    /// <summary>LayerNorm over rows of <paramref name="width"/>: one thread per row, two passes (mean, variance).</summary>
    public string LayerNorm(int width) => Request(
        $"LayerNorm{width}",
        "Index1D",
        new[] { "ArrayView<float> x", "ArrayView<float> weight", "ArrayView<float> bias", "ArrayView<float> y", "float eps" },
        $"y = (x - mean) / √(var + eps) · weight + bias over rows of {width}; one thread per row.",
        w =>
        {
            w.Line($"long start = (long)index.X * {width};");
            w.Line("float mean = 0f;");
            Loop(w, width, "mean += x[start + i];");
            w.Line($"mean *= 1f / {width};");
            w.Line("float variance = 0f;");
            using (w.Block($"for (var i = 0; i < {width}; i++)"))
            {
                w.Line("var centered = x[start + i] - mean;");
                w.Line("variance += centered * centered;");
            }

            w.Line($"var scale = XMath.Rsqrt((variance * (1f / {width})) + eps);");
            Loop(w, width, "y[start + i] = ((x[start + i] - mean) * scale * weight[i]) + bias[i];");
        });

    /// <summary>
    /// y[r, o] = Σ_i x[r, i]·W[i, o] (+ b[o]) with W uploaded transposed [in, out]. Thread (o, tile) keeps
    /// RowTile rows in registers, so each weight is read once per RowTile rows and a warp reads 32
    /// consecutive outputs of one input row (coalesced). Epilogue: "" store, "Gelu" store gelu(·),
    /// "Add" accumulate into y (residual), "NoBias" store without bias (LM head).
    /// </summary>
    public string Linear(int outputs, int inputs, string epilogue)
    {
        var hasBias = epilogue != "NoBias";
        var parameters = hasBias
            ? new[] { "ArrayView<float> x", "ArrayView<float> w", "ArrayView<float> b", "ArrayView<float> y", "int rows" }
            : new[] { "ArrayView<float> x", "ArrayView<float> w", "ArrayView<float> y", "int rows" };
        var summary = epilogue switch
        {
            "Gelu" => $"y = gelu(x·W + b) for W [{inputs} in, {outputs} out]",
            "Add" => $"y += x·W + b (residual) for W [{inputs} in, {outputs} out]",
            "NoBias" => $"y = x·W for W [{inputs} in, {outputs} out]",
            _ => $"y = x·W + b for W [{inputs} in, {outputs} out]",
        };
        return Request($"Linear{outputs}In{inputs}{epilogue}", "Index2D", parameters, summary + $"; thread (output, tile of {Tile} rows).", w =>
        {
            w.Line("var o = index.X;");
            w.Line($"long r0 = (long)index.Y * {Tile};");
            w.Line(string.Join(" ", Enumerable.Range(0, Tile).Select(r => $"float a{r} = 0f;")));
            using (w.Block($"for (var i = 0; i < {inputs}; i++)"))
            {
                w.Line($"var weight = w[((long)i * {outputs}) + o];");
                for (var r = 0; r < Tile; r++)
                {
                    w.Line($"a{r} += x[((r0 + {r}) * {inputs}) + i] * weight;");
                }
            }

            if (hasBias)
            {
                w.Line("var bias = b[o];");
            }

            for (var r = 0; r < Tile; r++)
            {
                var value = hasBias ? $"a{r} + bias" : $"a{r}";
                var store = epilogue switch
                {
                    "Gelu" => $"y[((r0 + {r}) * {outputs}) + o] = Gelu({value});",
                    "Add" => $"y[((r0 + {r}) * {outputs}) + o] += {value};",
                    _ => $"y[((r0 + {r}) * {outputs}) + o] = {value};",
                };
                using (w.Block($"if (r0 + {r} < rows)"))
                {
                    w.Line(store);
                }
            }
        });
    }

    /// <summary>Rows of <paramref name="perRow"/> table lookups of <paramref name="width"/> floats each, concatenated.</summary>
    public string Lookup(int width, int perRow) => Request(
        perRow == 1 ? $"Lookup{width}" : $"Lookup{perRow}x{width}",
        "Index2D",
        new[] { "ArrayView<int> tokens", "ArrayView<float> table", "ArrayView<float> y" },
        perRow == 1
            ? $"y[r] = table[tokens[r]], rows of {width}; thread (column, row)."
            : $"y[r] = concat(table[tokens[{perRow}r]], …, table[tokens[{perRow}r + {perRow - 1}]]), {perRow} × {width} per row; thread (column, row).",
        w =>
        {
            w.Line("var column = index.X;");
            w.Line("var row = index.Y;");
            w.Line(perRow == 1
                ? "var token = tokens[row];"
                : $"var token = tokens[(row * {perRow}) + (column / {width})];");
            w.Line($"y[((long)row * {width * perRow}) + column] = table[((long)token * {width}) + (column % {width})];");
        });

    /// <summary>
    /// RoPE (rotate-half on the first RotaryDims dims) on each query and K head of a fused QKV row, and K/V of
    /// the row stored at its cache slot. Thread (head, row); heads Heads.. are the K/V heads.
    /// </summary>
    public string RopeAndStore(DecoderPart part) => Request(
        $"{part.Prefix}RopeAndStore",
        "Index2D",
        new[] { "ArrayView<float> qkv", "ArrayView<float> rope", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<int> positions", "ArrayView<float> keys", "ArrayView<float> values", "long layerOffset", "int capacity" },
        $"{part.ForwardMethod}: RoPE on q and k at each row's position, then K and V into the cache at the row's slot; thread (head, row).",
        w =>
        {
            var p = part.Prefix;
            w.Line("var head = index.X;");
            w.Line("var row = index.Y;");
            w.Line($"var isKey = head >= {p}Heads;");
            w.Line($"var group = isKey ? head - {p}Heads : head / {p}GroupSize;");
            w.Line($"long start = ((long)row * {p}QkvWidth) + (group * {p}GroupWidth) + ((isKey ? {p}GroupSize : head % {p}GroupSize) * {p}HeadDim);");
            if (part.Spec.RotaryDims > 0)
            {
                var half = part.Spec.RotaryDims / 2;
                w.Line($"long angle = (long)positions[row] * {half};");
                using (w.Block($"for (var i = 0; i < {half}; i++)"))
                {
                    w.Line("var cos = rope[angle + i];");
                    w.Line($"var sin = rope[((long){p}MaxContext * {half}) + angle + i];");
                    w.Line("var u = qkv[start + i];");
                    w.Line($"var v = qkv[start + i + {half}];");
                    w.Line("qkv[start + i] = (u * cos) - (v * sin);");
                    w.Line($"qkv[start + i + {half}] = (v * cos) + (u * sin);");
                }
            }

            using (w.Block("if (isKey)"))
            {
                w.Line($"long slot = layerOffset + ((((long)sequences[row] * capacity) + slots[row]) * {p}KvDim) + (group * {p}HeadDim);");
                using (w.Block($"for (var d = 0; d < {p}HeadDim; d++)"))
                {
                    w.Line("keys[slot + d] = qkv[start + d];");
                    w.Line($"values[slot + d] = qkv[start + {p}HeadDim + d];");
                }
            }
        });

    /// <summary>
    /// Long attention (block decoder, vanilla decoder), flash-decoding style: thread (head, chunk, row)
    /// runs an online softmax over its <see cref="AttentionChunk"/> cache slots and writes its accumulators,
    /// max and sum; <see cref="AttentionCombine"/> merges the chunks. Chunks give the GPU parallelism
    /// along the context, where batch × heads alone is too few threads.
    /// </summary>
    public string AttentionChunked(DecoderPart part) => Request(
        $"{part.Prefix}AttentionChunk",
        "Index3D",
        new[] { "ArrayView<float> qkv", "ArrayView<float> keys", "ArrayView<float> values", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<float> partial", "long layerOffset", "int capacity", "int chunks" },
        $"{part.ForwardMethod}: softmax(q·Kᵀ/√d_h)·V over one chunk of {AttentionChunk} cache slots (online softmax); thread (head, chunk, row).",
        w =>
        {
            var p = part.Prefix;
            w.Line("var head = index.X;");
            w.Line("var chunk = index.Y;");
            w.Line("var row = index.Z;");
            w.Line($"long output = ((((long)row * {p}Heads) + head) * chunks + chunk) * ({p}HeadDim + 2);");
            w.Line($"var first = chunk * {AttentionChunk};");
            w.Line($"var end = XMath.Min(slots[row] + 1, first + {AttentionChunk});");
            w.Line($"var group = head / {p}GroupSize;");
            w.Line($"long q = ((long)row * {p}QkvWidth) + (group * {p}GroupWidth) + ((head % {p}GroupSize) * {p}HeadDim);");
            w.Line($"long cache = layerOffset + ((long)sequences[row] * capacity * {p}KvDim) + (group * {p}HeadDim);");
            w.Line($"var acc = LocalMemory.Allocate<float>({p}HeadDim);");
            Loop(w, part.Spec.HeadDim, "acc[i] = 0f;");
            w.Line("var max = float.NegativeInfinity;");
            w.Line("var sum = 0f;");
            using (w.Block("for (var t = first; t < end; t++)"))
            {
                w.Line($"long at = cache + ((long)t * {p}KvDim);");
                w.Line("var score = 0f;");
                Loop(w, part.Spec.HeadDim, "score += qkv[q + i] * keys[at + i];");
                w.Line($"score *= {p}AttentionScale;");
                using (w.Block("if (score > max)"))
                {
                    w.Line("var rescale = XMath.Exp(max - score);");
                    w.Line("sum *= rescale;");
                    Loop(w, part.Spec.HeadDim, "acc[i] *= rescale;");
                    w.Line("max = score;");
                }

                w.Line("var weight = XMath.Exp(score - max);");
                w.Line("sum += weight;");
                Loop(w, part.Spec.HeadDim, "acc[i] += weight * values[at + i];");
            }

            Loop(w, part.Spec.HeadDim, "partial[output + i] = acc[i];");
            w.Line($"partial[output + {p}HeadDim] = max;");
            w.Line($"partial[output + {p}HeadDim + 1] = sum;");
        });

    /// <summary>Merges the chunk partials of <see cref="AttentionChunked"/>: thread (dim, head, row).</summary>
    public string AttentionCombine(DecoderPart part) => Request(
        $"{part.Prefix}AttentionCombine",
        "Index3D",
        new[] { "ArrayView<float> partial", "ArrayView<int> slots", "ArrayView<float> output", "int chunks" },
        $"{part.ForwardMethod}: out = Σ_c e^(max_c - max)·acc_c / Σ_c e^(max_c - max)·sum_c over the row's chunks; thread (dim, head, row).",
        w =>
        {
            var p = part.Prefix;
            w.Line("var d = index.X;");
            w.Line("var head = index.Y;");
            w.Line("var row = index.Z;");
            w.Line($"var used = (slots[row] / {AttentionChunk}) + 1;");
            w.Line($"long first = (((long)row * {p}Heads) + head) * chunks * ({p}HeadDim + 2);");
            w.Line("var max = float.NegativeInfinity;");
            using (w.Block("for (var c = 0; c < used; c++)"))
            {
                w.Line($"max = XMath.Max(max, partial[first + (c * ({p}HeadDim + 2)) + {p}HeadDim]);");
            }

            w.Line("var total = 0f;");
            w.Line("var value = 0f;");
            using (w.Block("for (var c = 0; c < used; c++)"))
            {
                w.Line($"long at = first + (c * ({p}HeadDim + 2));");
                w.Line($"var scale = XMath.Exp(partial[at + {p}HeadDim] - max);");
                w.Line($"total += partial[at + {p}HeadDim + 1] * scale;");
                w.Line("value += partial[at + d] * scale;");
            }

            w.Line($"output[((long)row * {p}Hidden) + (head * {p}HeadDim) + d] = value / total;");
        });

    /// <summary>
    /// Short attention (token decoder): at most <paramref name="slots"/> = R + L_B - 1 cached positions, so
    /// thread (head, row) keeps every score in a register (unrolled) and needs no online rescaling.
    /// </summary>
    public string AttentionShort(DecoderPart part, int slots) => Request(
        $"{part.Prefix}AttentionShort",
        "Index2D",
        new[] { "ArrayView<float> qkv", "ArrayView<float> keys", "ArrayView<float> values", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<float> output", "long layerOffset" },
        $"{part.ForwardMethod}: softmax(q·Kᵀ/√d_h)·V over the ≤ {slots} slots of the per-block cache, scores in registers; thread (head, row).",
        w =>
        {
            var p = part.Prefix;
            w.Line("var head = index.X;");
            w.Line("var row = index.Y;");
            w.Line("var last = slots[row];");
            w.Line($"var group = head / {p}GroupSize;");
            w.Line($"long q = ((long)row * {p}QkvWidth) + (group * {p}GroupWidth) + ((head % {p}GroupSize) * {p}HeadDim);");
            w.Line($"long cache = layerOffset + ((long)sequences[row] * {slots} * {p}KvDim) + (group * {p}HeadDim);");
            for (var t = 0; t < slots; t++)
            {
                w.Line($"var s{t} = float.NegativeInfinity;");
                using (w.Block(t == 0 ? "// slot 0: every row has it" : $"if (last >= {t})"))
                {
                    w.Line($"var dot{t} = 0f;");
                    Loop(w, part.Spec.HeadDim, $"dot{t} += qkv[q + i] * keys[cache + ({t} * {p}KvDim) + i];");
                    w.Line($"s{t} = dot{t} * {p}AttentionScale;");
                }
            }

            w.Line("var max = " + Nest("XMath.Max", Enumerable.Range(0, slots).Select(t => $"s{t}").ToArray()) + ";");
            for (var t = 0; t < slots; t++)
            {
                w.Line($"var e{t} = XMath.Exp(s{t} - max);");
            }

            w.Line("var inverse = 1f / (" + string.Join(" + ", Enumerable.Range(0, slots).Select(t => $"e{t}")) + ");");
            using (w.Block($"for (var d = 0; d < {p}HeadDim; d++)"))
            {
                w.Line("var value = 0f;");
                for (var t = 0; t < slots; t++)
                {
                    w.Line($"value += e{t} * values[cache + ({t} * {p}KvDim) + d];");
                }

                w.Line($"output[((long)row * {p}Hidden) + (head * {p}HeadDim) + d] = value * inverse;");
            }
        });

    /// <summary>
    /// Sampling, step 1: thread (chunk, row) keeps the top-k logits of its <see cref="SampleChunk"/> ids,
    /// sorted, earlier ids first among equal values (so top-1 is the CPU's lowest-id argmax).
    /// </summary>
    public string TopKCandidates(int vocab) => Request(
        "TopKCandidates",
        "Index2D",
        new[] { "ArrayView<float> logits", "ArrayView<float> values", "ArrayView<int> ids", "int k" },
        $"Sampling step 1: the k largest logits of ids [{SampleChunk}·chunk, {SampleChunk}·(chunk + 1)) of one row, sorted; thread (chunk, row).",
        w =>
        {
            w.Line("var chunk = index.X;");
            w.Line("var row = index.Y;");
            w.Line("var best = LocalMemory.Allocate<float>(GpuModel.MaxTopK);");
            w.Line("var bestIds = LocalMemory.Allocate<int>(GpuModel.MaxTopK);");
            w.Line("var count = 0;");
            w.Line($"var end = XMath.Min(VocabSize, (chunk + 1) * {SampleChunk});");
            using (w.Block($"for (var id = chunk * {SampleChunk}; id < end; id++)"))
            {
                w.Line("var logit = logits[((long)row * VocabSize) + id];");
                w.Line("count = InsertCandidate(best, bestIds, count, k, logit, id);");
            }

            w.Line($"long output = (((long)row * SampleChunks) + chunk) * GpuModel.MaxTopK;");
            using (w.Block("for (var i = 0; i < k; i++)"))
            {
                w.Line("values[output + i] = i < count ? best[i] : float.NegativeInfinity;");
                w.Line("ids[output + i] = i < count ? bestIds[i] : -1;");
            }
        });

    /// <summary>
    /// Sampling, step 2: thread per row merges the chunks' candidates in id order into the row's top k,
    /// then picks the first (greedy) or draws as the CPU sampler does: p_i ∝ e^((l_i - l_0)/T), target =
    /// u·Σp, walk down the sorted list. u is draw <c>draw</c> of the row's SplitMix64 stream.
    /// </summary>
    public string SampleFromCandidates() => Request(
        "SampleFromCandidates",
        "Index1D",
        new[] { "ArrayView<float> values", "ArrayView<int> ids", "ArrayView<int> tokens", "int k", "int greedy", "float temperature", "ulong seed", "int draw" },
        "Sampling step 2: top k of the row from the chunk candidates, then greedy or temperature sampling; thread per row.",
        w =>
        {
            w.Line("var row = index.X;");
            w.Line("var best = LocalMemory.Allocate<float>(GpuModel.MaxTopK);");
            w.Line("var bestIds = LocalMemory.Allocate<int>(GpuModel.MaxTopK);");
            w.Line("var count = 0;");
            using (w.Block("for (var c = 0; c < SampleChunks; c++)"))
            {
                w.Line("long first = (((long)row * SampleChunks) + c) * GpuModel.MaxTopK;");
                using (w.Block("for (var i = 0; i < k; i++)"))
                {
                    using (w.Block("if (ids[first + i] >= 0)"))
                    {
                        w.Line("count = InsertCandidate(best, bestIds, count, k, values[first + i], ids[first + i]);");
                    }
                }
            }

            using (w.Block("if (greedy != 0)"))
            {
                w.Line("tokens[row] = bestIds[0];");
                w.Line("return;");
            }

            w.Line("var top = best[0];");
            w.Line("double total = 0;");
            using (w.Block("for (var i = 0; i < count; i++)"))
            {
                w.Line("best[i] = XMath.Exp((best[i] - top) / temperature);");
                w.Line("total += best[i];");
            }

            w.Line("// Sampler's stream: state = seed ^ (0x5851F42D4C957F2D·(row + 1)), draw n is SplitMix64 output n + 1.");
            w.Line("var state = (seed ^ (0x5851F42D4C957F2DUL * (ulong)(row + 1))) + ((ulong)(draw + 1) * 0x9E3779B97F4A7C15UL);");
            w.Line("state = (state ^ (state >> 30)) * 0xBF58476D1CE4E5B9UL;");
            w.Line("state = (state ^ (state >> 27)) * 0x94D049BB133111EBUL;");
            w.Line("state ^= state >> 31;");
            w.Line("var target = (state >> 11) * (1.0 / 9007199254740992.0) * total;");
            w.Line("var chosen = bestIds[count - 1];");
            using (w.Block("for (var i = 0; i < count; i++)"))
            {
                w.Line("target -= best[i];");
                using (w.Block("if (target < 0)"))
                {
                    w.Line("chosen = bestIds[i];");
                    w.Line("break;");
                }
            }

            w.Line("tokens[row] = chosen;");
        });

    public void EmitFields(SourceWriter w)
    {
        foreach (var kernel in kernels)
        {
            w.Line($"private readonly Action<{kernel.Types}> {kernel.Field};");
        }
    }

    public void EmitLoads(SourceWriter w)
    {
        foreach (var kernel in kernels)
        {
            w.Line($"{kernel.Field} = accelerator.LoadAutoGroupedStreamKernel<{kernel.Types}>({kernel.Name});");
        }
    }

    public void EmitKernels(SourceWriter w)
    {
        foreach (var kernel in kernels)
        {
            w.Line();
            w.Line($"/// <summary>{kernel.Summary}</summary>");
            using (w.Block($"private static void {kernel.Name}({kernel.Index} index, {string.Join(", ", kernel.Parameters)})"))
            {
                kernel.Body(w);
            }
        }
    }

    private string Request(string name, string index, string[] parameters, string summary, Action<SourceWriter> body)
    {
        var kernel = kernels.FirstOrDefault(k => k.Name == name);
        if (kernel is null)
        {
            kernel = new Kernel(name, index, parameters, body, summary);
            kernels.Add(kernel);
        }

        return kernel.Field;
    }

    private static void Loop(SourceWriter w, int length, string statement)
    {
        using (w.Block($"for (var i = 0; i < {length}; i++)"))
        {
            w.Line(statement);
        }
    }

    private static string Nest(string function, string[] arguments) => arguments.Length == 1
        ? arguments[0]
        : $"{function}({arguments[0]}, {Nest(function, arguments.Skip(1).ToArray())})";
}
