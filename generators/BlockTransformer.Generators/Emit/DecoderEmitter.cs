using System.Globalization;
using BlockTransformer.Generators.Helpers;
using BlockTransformer.Generators.Model;

namespace BlockTransformer.Generators.Emit;

/// <summary>
/// Emits one decoder stack: its constants, the public forward method that runs every layer in
/// straight-line order, one method per layer, and the attention and RoPE steps for its head layout.
/// </summary>
internal sealed class DecoderEmitter
{
    private readonly DecoderPart part;
    private readonly KernelEmitter kernels;
    private readonly string p;
    private readonly bool bf16KvCache;

    public DecoderEmitter(DecoderPart part, KernelEmitter kernels, bool bf16KvCache)
    {
        this.part = part;
        this.kernels = kernels;
        this.bf16KvCache = bf16KvCache;
        p = part.Prefix;
    }

    private DecoderSpec S => part.Spec;

    /// <summary>The element type of the KV cache in generated code: bf16 bits or f32.</summary>
    private string Kv => KernelEmitter.Element(bf16KvCache);

    public void EmitConstants(SourceWriter w, string title)
    {
        w.Line($"// {title}: {S.Layers} layers × {S.Hidden}, {S.Heads} heads of {S.HeadDim} ({S.KvHeads} K/V heads), FFN {S.Intermediate}.");
        Const(w, "int", "Layers", S.Layers);
        Const(w, "int", "Hidden", S.Hidden);
        Const(w, "int", "Heads", S.Heads);
        Const(w, "int", "KvHeads", S.KvHeads);
        Const(w, "int", "HeadDim", S.HeadDim);
        w.Line($"/// <summary>Query heads per K/V head; the fused QKV row holds, per K/V head, its queries then K then V.</summary>");
        Const(w, "int", "GroupSize", S.GroupSize);
        Const(w, "int", "GroupWidth", (S.GroupSize + 2) * S.HeadDim);
        Const(w, "int", "QkvWidth", S.QkvWidth);
        Const(w, "int", "KvDim", S.KvDim);
        Const(w, "int", "Intermediate", S.Intermediate);
        Const(w, "int", "RotaryDims", S.RotaryDims);
        Const(w, "int", "MaxContext", S.MaxContext);
        Const(w, "int", "QueryTile", 16, "rows per attention work item");
        Const(w, "int", "ScoreStride", S.MaxContext + 16, "scores per row of a work item (MaxContext + KvCache.KeyBlock)");
        Const(w, "int", "ValueBlock", 64, "value rows a group of query rows shares from L1");
        Const(w, "double", "RotaryBase", Literal(S.RotaryBase) + "d");
        Const(w, "float", "LayerNormEps", Literal(S.LayerNormEps) + "f");
        Const(w, "float", "AttentionScale", Literal(1.0 / System.Math.Sqrt(S.HeadDim)) + "f", "1/√d_h");
    }

    public void EmitForward(SourceWriter w, string summary)
    {
        w.Line($"/// <summary>{summary} Works in place: input embeddings in <paramref name=\"hidden\"/>, final_layer_norm outputs out.</summary>");
        using (w.Block($"public void {part.ForwardMethod}(Span<float> hidden, DecoderRows rows, KvCache cache, Scratch scratch)"))
        {
            w.Line($"rows.Validate(hidden.Length, {p}Hidden, cache, {p}Layers, {p}KvHeads, {p}HeadDim, Bf16KvCache, {p}MaxContext);");
            using (w.Block("fixed (float* x = hidden)"))
            {
                for (var i = 0; i < S.Layers; i++)
                {
                    w.Line($"{p}Layer{i}(x, rows, cache, scratch);");
                }

                var norm = kernels.LayerNorm(S.Hidden);
                w.Line($"{norm}(x, rows.Count, {part.FinalNormWeight}.Pointer, {part.FinalNormBias}.Pointer, x, {p}LayerNormEps); // final_layer_norm");
            }
        }

        for (var i = 0; i < S.Layers; i++)
        {
            w.Line();
            EmitLayer(w, i);
        }

        w.Line();
        EmitAttention(w);
        if (S.RotaryDims > 0)
        {
            w.Line();
            EmitRotary(w);
        }
    }

    private void EmitLayer(SourceWriter w, int layer)
    {
        var norm = kernels.LayerNorm(S.Hidden);
        var qkv = kernels.Linear(S.QkvWidth, S.Hidden);
        var dense = kernels.Linear(S.Hidden, S.Hidden);
        var up = kernels.Linear(S.Intermediate, S.Hidden, gelu: true);
        var down = kernels.Linear(S.Hidden, S.Intermediate);
        string F(string name) => part.LayerField(layer, name) + ".Pointer";
        string Panels(string name) => part.LayerField(layer, name); // a float* into the model's PanelArena

        w.Line(S.ParallelResidual
            ? $"/// <summary>{p} decoder layer {layer}, parallel residual: x ← x + Attn(LN1(x)) + MLP(LN2(x)).</summary>"
            : $"/// <summary>{p} decoder layer {layer}, sequential residual: x ← x + Attn(LN1(x)); x ← x + MLP(LN2(x)).</summary>");
        using (w.Block($"private void {p}Layer{layer}(float* x, DecoderRows rows, KvCache cache, Scratch scratch)"))
        {
            w.Line("var n = rows.Count;");
            w.Line($"float* attnIn = scratch.Get(ScratchAttnIn, (long)n * {p}Hidden);");
            w.Line($"float* mlpIn = scratch.Get(ScratchMlpIn, (long)n * {p}Hidden);");
            w.Line($"float* qkv = scratch.Get(ScratchQkv, (long)n * {p}QkvWidth);");
            w.Line($"float* attn = scratch.Get(ScratchAttn, (long)n * {p}Hidden);");
            w.Line($"float* ff = scratch.Get(ScratchFeedForward, (long)n * {p}Intermediate);");
            w.Line($"{norm}(x, n, {F("InputNormWeight")}, {F("InputNormBias")}, attnIn, {p}LayerNormEps); // a = LN1(x)");
            if (S.ParallelResidual)
            {
                w.Line($"{norm}(x, n, {F("PostAttentionNormWeight")}, {F("PostAttentionNormBias")}, mlpIn, {p}LayerNormEps); // m = LN2(x), same x");
            }

            w.Line($"{qkv}(attnIn, n, {Panels("QkvWeight")}, {F("QkvBias")}, qkv, accumulate: false); // fused q|k|v per K/V head group");
            w.Line($"{p}Attention(qkv, rows, cache, {layer}, attn); // RoPE, cache K/V, softmax(q·Kᵀ/√d_h)·V");
            w.Line($"{dense}(attn, n, {Panels("DenseWeight")}, {F("DenseBias")}, x, accumulate: true); // x += dense(attn)");
            if (!S.ParallelResidual)
            {
                w.Line($"{norm}(x, n, {F("PostAttentionNormWeight")}, {F("PostAttentionNormBias")}, mlpIn, {p}LayerNormEps); // m = LN2(x + attn)");
            }

            w.Line($"{up}(mlpIn, n, {Panels("UpWeight")}, {F("UpBias")}, ff); // ff = gelu(dense_h_to_4h(m))");
            w.Line($"{down}(ff, n, {Panels("DownWeight")}, {F("DownBias")}, x, accumulate: true); // x += dense_4h_to_h(gelu(…))");
        }
    }

    /// <summary>The fields both attention work structs take besides their buffers.</summary>
    private static readonly string[] AttentionFields = ["public DecoderRows Rows;", "public KvCache Cache;", "public int Layer;"];

    private void EmitAttention(SourceWriter w)
    {
        var keyScores = kernels.KeyScores(S.HeadDim, bf16KvCache);
        var weightedSum = kernels.WeightedSum(S.HeadDim, S.HeadDim, bf16KvCache);
        var valueRows = KernelEmitter.WeightedSumRows(S.HeadDim);
        var weightedSums = valueRows > 1 ? kernels.WeightedSums(valueRows, S.HeadDim, S.HeadDim) : null;
        var softmax = kernels.Softmax();
        EmitCacheStore(w);
        w.Line();
        w.Line($"/// <summary>");
        w.Line($"/// {p} decoder attention for one layer: RoPE on q and k, store each row's K and V at its cache slot,");
        w.Line($"/// then per row and head softmax(q·Kᵀ/√d_h)·V over slots 0..slot of the row's own sequence (causal).");
        w.Line($"/// </summary>");
        w.Line(KernelEmitter.Optimized);
        using (w.Block($"private void {p}Attention(float* qkv, DecoderRows rows, KvCache cache, int layer, float* output)"))
        {
            w.Line("var n = rows.Count;");
            w.Line($"var store = new {p}CacheStoreWork {{ Qkv = qkv, Rows = rows, Cache = cache, Layer = layer{(S.RotaryDims > 0 ? $", Rope = {part.RotaryTable}.Pointer" : string.Empty)} }};");
            w.Line($"Parallelism.For(n, {p}QkvWidth, ref store); // every row's K and V are in the cache before any row attends");
            w.Line();
            w.Line($"// Work items are (chunk of up to {p}QueryTile consecutive rows, head). In prefill the rows of a");
            w.Line("// chunk belong to one sequence and are attended together, sharing each block of K and V in L1.");
            w.Line("// Later rows attend to more positions, so threads claim items one at a time rather than halves.");
            w.Line($"var work = new {p}AttentionWork {{ Qkv = qkv, Rows = rows, Cache = cache, Layer = layer, Output = output }};");
            w.Line($"Parallelism.ForUneven((n + {p}QueryTile - 1) / {p}QueryTile * {p}Heads, (long){p}QueryTile * {p}HeadDim * {p}MaxContext, grain: 1, ref work);");
        }

        w.Line();
        KernelEmitter.WorkStruct(
            w,
            $"{p}AttentionWork",
            $"Attention work items [start, end): item = (chunk of {p}QueryTile rows, head).",
            ["public float* Qkv, Output;", .. AttentionFields],
            () =>
            {
                w.Line($"float* scores = ThreadScratch.Scores({p}QueryTile * {p}ScoreStride); // not stackalloc: long contexts outgrow a pool thread's stack");
                w.Line("var n = Rows.Count;");
                using (w.Block("for (var item = start; item < end; item++)"))
                {
                    w.Line($"var first = item / {p}Heads * {p}QueryTile;");
                    w.Line($"var stop = Math.Min(n, first + {p}QueryTile);");
                    using (w.Block("for (var r = first; r < stop;)"))
                    {
                        w.Line("var group = r + 1;");
                        using (w.Block("while (group < stop && Rows.Sequence(group) == Rows.Sequence(r))"))
                        {
                            w.Line("group++;");
                        }

                        w.Line($"{p}AttendRows(Qkv, Rows, Cache, Layer, r, group, item % {p}Heads, scores, Output);");
                        w.Line("r = group;");
                    }
                }
            });

        w.Line();
        w.Line("/// <summary>");
        w.Line("/// One head of rows [r0, r1) of one sequence: scores q·k/√d_h over slots 0..slot of each row, max-subtracted");
        w.Line($"/// softmax, weighted sum of values. Scores come from row tiles against pairs of key blocks; values are");
        w.Line("/// read value block by value block, tiles of rows innermost, so each block is read from memory once for the group.");
        w.Line("/// </summary>");
        w.Line(KernelEmitter.Optimized);
        using (w.Block($"private static void {p}AttendRows(float* qkv, DecoderRows rows, KvCache cache, int layer, int r0, int r1, int h, float* scores, float* output)"))
        {
            w.Line($"var group = h / {p}GroupSize;");
            w.Line($"{Kv}* keys = cache.Keys<{Kv}>(rows.Sequence(r0), layer, group);");
            w.Line($"{Kv}* values = cache.Values<{Kv}>(rows.Sequence(r0), layer, group);");
            w.Line($"float* q = qkv + (group * {p}GroupWidth) + ((h % {p}GroupSize) * {p}HeadDim);");
            w.Line($"float* inverse = stackalloc float[{p}QueryTile];");
            w.Line($"float* queries = stackalloc float[{p}QueryTile * {p}HeadDim];");
            w.Line($"int* ends = stackalloc int[{p}QueryTile];");
            if (bf16KvCache && weightedSums is not null)
            {
                w.Line($"float* widened = stackalloc float[{p}ValueBlock * {p}HeadDim]; // one value block as f32 for the row tiles");
            }

            w.Line("var last = 0;");
            using (w.Block("for (var r = r0; r < r1; r++)"))
            {
                w.Line("last = Math.Max(last, rows.Slot(r));");
                w.Line("ends[r - r0] = rows.Slot(r) + 1;");
                w.Line($"float* query = q + ((long)r * {p}QkvWidth);");
                using (w.Block($"for (var d = 0; d < {p}HeadDim; d++)"))
                {
                    w.Line($"queries[((r - r0) * {p}HeadDim) + d] = query[d] * {p}AttentionScale; // scaled here, so the softmax reads scaled scores");
                }
            }

            w.Line("// (q/√d_h)·k for the group's rows gathered into one tile, against 16-position key blocks ([head_dim × 16] panels).");
            w.Line($"{keyScores}(queries, r1 - r0, ends, keys, scores, {p}ScoreStride);");
            w.Line();
            using (w.Block("for (var r = r0; r < r1; r++)"))
            {
                w.Line($"inverse[r - r0] = 1f / {softmax}(scores + ((r - r0) * {p}ScoreStride), rows.Slot(r) + 1);");
            }

            w.Line();
            if (weightedSums is not null)
            {
                w.Line($"// A tile of {valueRows} rows shares each value row, so every row's probabilities run to the group's last slot:");
                w.Line("// zero past each row's own end (KeyScores filled whole key blocks there). Decode groups are single rows.");
                using (w.Block($"if (r1 - r0 >= {valueRows})"))
                using (w.Block("for (var r = r0; r < r1; r++)"))
                {
                    w.Line($"new Span<float>(scores + ((r - r0) * {p}ScoreStride) + ends[r - r0], last + 1 - ends[r - r0]).Clear();");
                }

                w.Line();
            }

            using (w.Block($"for (var t = 0; t <= last; t += {p}ValueBlock)"))
            {
                w.Line("var r = r0;");
                if (weightedSums is not null)
                {
                    var block = $"values + ((long)t * {p}HeadDim)";
                    if (bf16KvCache)
                    {
                        w.Line("// The tiles read this value block as f32, widened once for all of them: widening it in every");
                        w.Line("// row's loads made P·V 1.7x slower than f32 on AVX2 (one value vector per FMA there).");
                        using (w.Block($"if (r1 - r0 >= {valueRows})"))
                        {
                            w.Line($"Bf16.Widen({block}, widened, Math.Min({p}ValueBlock, last + 1 - t) * {p}HeadDim);");
                        }

                        block = "widened";
                    }

                    using (w.Block($"for (; r + {valueRows} <= r1; r += {valueRows})"))
                    {
                        w.Line($"{weightedSums}(output + ((long)r * {p}Hidden) + (h * {p}HeadDim), {p}Hidden, {block}, scores + ((r - r0) * {p}ScoreStride) + t, {p}ScoreStride, Math.Min({p}ValueBlock, last + 1 - t), inverse + (r - r0), accumulate: t > 0);");
                    }

                    w.Line();
                }

                using (w.Block("for (; r < r1; r++)"))
                {
                    w.Line($"var count = Math.Min({p}ValueBlock, rows.Slot(r) + 1 - t);");
                    using (w.Block("if (count > 0)"))
                    {
                        w.Line($"{weightedSum}(output + ((long)r * {p}Hidden) + (h * {p}HeadDim), values + ((long)t * {p}HeadDim), scores + ((r - r0) * {p}ScoreStride) + t, count, inverse[r - r0], accumulate: t > 0);");
                    }
                }
            }
        }
    }

    /// <summary>
    /// The first step of attention, split across cores by rows: RoPE on each row's query and key heads in
    /// place, then its K (into the 16-position key blocks) and V at the row's cache slot. Rows write
    /// disjoint slots, so their order does not matter.
    /// </summary>
    private void EmitCacheStore(SourceWriter w)
    {
        KernelEmitter.WorkStruct(
            w,
            $"{p}CacheStoreWork",
            $"Rows [start, end) of {p}Attention's first step: RoPE on q and k, then K and V into the cache.",
            [$"public float* Qkv{(S.RotaryDims > 0 ? ", Rope" : string.Empty)};", .. AttentionFields],
            () =>
            {
                if (bf16KvCache)
                {
                    w.Line($"ushort* rounded = stackalloc ushort[2 * {p}HeadDim]; // one K/V head's K then V as bf16");
                }

                using (w.Block("for (var r = start; r < end; r++)"))
                {
                    w.Line($"float* row = Qkv + ((long)r * {p}QkvWidth);");
                    if (S.RotaryDims > 0)
                    {
                        w.Line($"{p}Rotary(row, Rope, Rows.Position(r));");
                    }

                    w.Line("var slot = Rows.Slot(r);");
                    using (w.Block($"for (var g = 0; g < {p}KvHeads; g++)"))
                    {
                        w.Line($"float* k = row + (g * {p}GroupWidth) + ({p}GroupSize * {p}HeadDim); // this K/V head's K, then its V");
                        var source = "k";
                        if (bf16KvCache)
                        {
                            w.Line($"Bf16.Round(k, rounded, 2 * {p}HeadDim); // to nearest even, eight at a time");
                            source = "rounded";
                        }

                        w.Line($"{Kv}* keys = Cache.Keys<{Kv}>(Rows.Sequence(r), Layer, g) + ((long)(slot / KvCache.KeyBlock) * KvCache.KeyBlock * {p}HeadDim) + (slot % KvCache.KeyBlock);");
                        w.Line($"{Kv}* values = Cache.Values<{Kv}>(Rows.Sequence(r), Layer, g) + ((long)slot * {p}HeadDim);");
                        using (w.Block($"for (var d = 0; d < {p}HeadDim; d++)"))
                        {
                            w.Line($"keys[d * KvCache.KeyBlock] = {source}[d];");
                            w.Line($"values[d] = {source}[{p}HeadDim + d];");
                        }
                    }
                }
            });
    }

    private void EmitRotary(SourceWriter w)
    {
        var rotate = kernels.RotateHalf(S.RotaryDims);
        w.Line($"/// <summary>RoPE at <paramref name=\"position\"/> on every query head and every K head of one fused QKV row; <paramref name=\"table\"/> holds cos then sin.</summary>");
        w.Line(KernelEmitter.Optimized);
        using (w.Block($"private static void {p}Rotary(float* row, float* table, int position)"))
        {
            w.Line($"float* cos = table + ((long)position * ({p}RotaryDims / 2));");
            w.Line($"float* sin = cos + ((long){p}MaxContext * ({p}RotaryDims / 2));");
            using (w.Block($"for (var h = 0; h < {p}Heads; h++)"))
            {
                w.Line($"{rotate}(row + ((h / {p}GroupSize) * {p}GroupWidth) + ((h % {p}GroupSize) * {p}HeadDim), cos, sin);");
            }

            using (w.Block($"for (var g = 0; g < {p}KvHeads; g++)"))
            {
                w.Line($"{rotate}(row + (g * {p}GroupWidth) + ({p}GroupSize * {p}HeadDim), cos, sin);");
            }
        }
    }

    private void Const(SourceWriter w, string type, string name, object value, string? comment = null) =>
        w.Line($"public const {type} {p}{name} = {value};{(comment is null ? string.Empty : " // " + comment)}");

    internal static string Literal(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
