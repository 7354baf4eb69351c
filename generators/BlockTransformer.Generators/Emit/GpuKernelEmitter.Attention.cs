using System.Linq;
using BlockTransformer.Generators.Helpers;

namespace BlockTransformer.Generators.Emit;

// Attention on the GPU: RoPE and the KV-cache store, long attention in warp-per-chunk pieces merged after,
// and the token decoder's short attention over a few slots.
internal sealed partial class GpuKernelEmitter
{
    /// <summary>Cache slots one long-attention warp covers before its partial result is merged.</summary>
    public const int AttentionChunk = 32;

    /// <summary>
    /// RoPE (rotate-half on the first RotaryDims dims) on each query and K head of a fused QKV row, and K/V of
    /// the row stored at its cache slot. Thread (head, row); heads Heads.. are the K/V heads.
    /// </summary>
    public string RopeAndStore(DecoderPart part) => Request(
        $"{part.Prefix}RopeAndStore",
        "Index2D",
        new[] { "ArrayView<float> qkv", "ArrayView<float> rope", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<int> positions", $"{KvView} keys", $"{KvView} values", "long layerOffset", "int capacity" },
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
                    w.Line($"keys[slot + d] = {Cached("qkv[start + d]")};");
                    w.Line($"values[slot + d] = {Cached($"qkv[start + {p}HeadDim + d]")};");
                }
            }
        });

    /// <summary>A K or V element as cached: its bf16 bits for kv_cache_dtype "bf16".</summary>
    private string Cached(string value) => bf16KvCache ? $"ToBf16({value})" : value;

    /// <summary>A cached K or V element as a float.</summary>
    private string Widened(string element) => bf16KvCache ? $"FromBf16({element})" : element;

    /// <summary>
    /// Long attention (block decoder, vanilla decoder), flash-decoding style: one warp per (head, chunk, row)
    /// runs an online softmax over its <see cref="AttentionChunk"/> cache slots, lane l holding dims l, l + 32, …
    /// of q and of the accumulator (a score is a warp sum), and writes its accumulator, max and sum;
    /// <see cref="AttentionCombine"/> merges the chunks. Chunks give the GPU parallelism along the context,
    /// where batch × heads alone is too few warps.
    /// </summary>
    public string AttentionChunked(DecoderPart part) => Request(
        $"{part.Prefix}AttentionChunk",
        null,
        new[] { "ArrayView<float> qkv", $"{KvView} keys", $"{KvView} values", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<float> partial", "long layerOffset", "int capacity", "int chunks" },
        $"{part.ForwardMethod}: softmax(q·Kᵀ/√d_h)·V over one chunk of {AttentionChunk} cache slots (online softmax); one warp per (head, chunk, row).",
        w =>
        {
            var p = part.Prefix;
            var headDim = part.Spec.HeadDim;
            var dims = Enumerable.Range(0, (headDim + WarpSize - 1) / WarpSize).ToArray();
            string Dim(int j) => j == 0 ? "lane" : $"lane + {j * WarpSize}";
            string Read(string view, string start, int j, bool cached)
            {
                var element = $"{view}[{start} + {Dim(j)}]";
                element = cached ? Widened(element) : element;
                return (j + 1) * WarpSize <= headDim ? element : $"({Dim(j)} < {headDim} ? {element} : 0f)";
            }

            w.Line("var head = Grid.IdxX;");
            w.Line("var chunk = Grid.IdxY;");
            w.Line("var row = Grid.IdxZ;");
            w.Line("var lane = Group.IdxX;");
            w.Line($"long output = ((((long)row * {p}Heads) + head) * chunks + chunk) * ({p}HeadDim + 2);");
            w.Line($"var first = chunk * {AttentionChunk};");
            w.Line($"var end = XMath.Min(slots[row] + 1, first + {AttentionChunk});");
            w.Line($"var group = head / {p}GroupSize;");
            w.Line($"long q = ((long)row * {p}QkvWidth) + (group * {p}GroupWidth) + ((head % {p}GroupSize) * {p}HeadDim);");
            w.Line($"long cache = layerOffset + ((long)sequences[row] * capacity * {p}KvDim) + (group * {p}HeadDim);");
            foreach (var j in dims)
            {
                w.Line($"var q{j} = {Read("qkv", "q", j, cached: false)};");
                w.Line($"var acc{j} = 0f;");
            }

            w.Line("var max = float.NegativeInfinity;");
            w.Line("var sum = 0f;");
            using (w.Block("for (var t = first; t < end; t++)"))
            {
                w.Line($"long at = cache + ((long)t * {p}KvDim);");
                w.Line("var dot = " + string.Join(" + ", dims.Select(j => $"(q{j} * {Read("keys", "at", j, cached: true)})")) + ";");
                w.Line($"var score = WarpSum(dot) * {p}AttentionScale;");
                w.Line("var next = XMath.Max(max, score);");
                w.Line("var rescale = XMath.Exp(max - next);");
                w.Line("var weight = XMath.Exp(score - next);");
                w.Line("sum = (sum * rescale) + weight;");
                foreach (var j in dims)
                {
                    w.Line($"acc{j} = (acc{j} * rescale) + (weight * {Read("values", "at", j, cached: true)});");
                }

                w.Line("max = next;");
            }

            foreach (var j in dims)
            {
                if ((j + 1) * WarpSize <= headDim)
                {
                    w.Line($"partial[output + {Dim(j)}] = acc{j};");
                }
                else
                {
                    using (w.Block($"if ({Dim(j)} < {headDim})"))
                    {
                        w.Line($"partial[output + {Dim(j)}] = acc{j};");
                    }
                }
            }

            using (w.Block("if (lane == 0)"))
            {
                w.Line($"partial[output + {p}HeadDim] = max;");
                w.Line($"partial[output + {p}HeadDim + 1] = sum;");
            }
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
        new[] { "ArrayView<float> qkv", $"{KvView} keys", $"{KvView} values", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<float> output", "long layerOffset" },
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
                    Loop(w, part.Spec.HeadDim, $"dot{t} += qkv[q + i] * {Widened($"keys[cache + ({t} * {p}KvDim) + i]")};");
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
                    w.Line($"value += e{t} * {Widened($"values[cache + ({t} * {p}KvDim) + d]")};");
                }

                w.Line($"output[((long)row * {p}Hidden) + (head * {p}HeadDim) + d] = value * inverse;");
            }
        });

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
