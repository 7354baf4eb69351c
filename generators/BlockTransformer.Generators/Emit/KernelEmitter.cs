using System;
using System.Collections.Generic;
using System.Linq;
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
    private readonly bool bf16Weights;

    /// <param name="bf16Weights">Linear weights are bf16 panels (memory_dtype "bf16"), widened to f32 on load.</param>
    public KernelEmitter(bool bf16Weights) => this.bf16Weights = bf16Weights;

    /// <summary>
    /// Put on every method and lambda whose loops do the model's work: the JIT otherwise starts them at
    /// tier 0 and, since each is called a few times with long loops, they can stay slow for a whole
    /// run (measured: 25 vs 127 GFLOP/s for a 64-row LM head). NativeAOT compiles everything optimized anyway.
    /// </summary>
    public const string Optimized = "[MethodImpl(MethodImplOptions.AggressiveOptimization)]";

    /// <summary>Outputs per packed weight panel (Packing.PanelWidth in the runtime).</summary>
    private const int PanelWidth = 16;

    /// <summary>
    /// Row tiles of the multi-row kernel, tallest first: each multiplies its rows against a pair of panels,
    /// so a step loads two weight vectors and broadcasts one input per row for 2 × rows FMAs. Twelve rows
    /// by two panels is 24 accumulators, within AVX-512's 32 registers (measured on one Zen 4 core for a
    /// 480 × 3072 × 768 product: 108 GFLOP/s against 74–92 for eight rows by one panel). The shorter
    /// tiles take what is left of a row block, so a batch of 8 still reads each weight once.
    /// </summary>
    private static readonly int[] TileRows = { 12, 8, 4 };

    /// <summary>Panels multiplied together by the multi-row kernel (see <see cref="TileRows"/>).</summary>
    private const int PanelsPerTile = 2;

    /// <summary>Independent accumulator chains of the one-row kernel, which hide FMA latency.</summary>
    private const int Chains = 4;

    /// <summary>Bytes of weight panels a thread keeps hot in its L2 (1 MiB on Zen 4) while a block of rows passes over them.</summary>
    private const int PanelChunkBytes = 512 * 1024;

    /// <summary>
    /// Chunks a row block's panel pairs are cut into at least (when there are that many pairs), so that
    /// threads claiming chunks one at a time end within about one chunk of each other.
    /// </summary>
    private const int MinChunks = 8;

    /// <summary>Bytes of input rows (a row block) that stay in cache while a thread's panels pass over them.</summary>
    private const int RowBlockBytes = 1024 * 1024;

    /// <summary>
    /// y[r, o] (+)= b[o] + Σ_i W[o, i]·x[r, i] with W packed in 16-output panels at load time. The work is
    /// cut into items, a block of rows (about <see cref="RowBlockBytes"/> of inputs) against a chunk of
    /// panel pairs (about <see cref="PanelChunkBytes"/>, at least <see cref="MinChunks"/> chunks), which
    /// threads claim one at a time, row block by row block, and run a row tile at a time. Claiming rather
    /// than a fixed half per thread: on these shared machines one core often runs slower than the other
    /// (a neighbour on its sibling hyperthread), and with fixed halves the faster one then waited for
    /// 12–23% of each kernel (measured in prefill and batch-32 decode). Weights are read once per row
    /// block (once per call at decode batch sizes: GEMM, not one GEMV per row), and both operands of the
    /// inner loops come from cache. Rows
    /// left over after the tiles (at most 3) run the one-row kernel, one panel at a time, so that a
    /// batch-1 decode streams each panel sequentially. With <paramref name="gelu"/> the outputs are
    /// y = GELU(b + W·x) (never accumulated): each thread applies GELU to a block of outputs as soon as a
    /// chunk of panel pairs has finished it for a row block, in parallel and while the block is in cache,
    /// instead of a separate pass over the whole [rows × outputs] matrix on one thread.
    /// </summary>
    public string Linear(int outputs, int inputs, bool gelu = false)
    {
        var (element, panels, pairs, pairWidth, chunk, rowBlock) = Layout(outputs, inputs);
        return Request($"Linear{outputs}x{inputs}{(gelu ? "Gelu" : string.Empty)}", (w, name) =>
        {
            w.Line(gelu
                ? $"/// <summary>y[r, o] = GELU(b[o] + Σ_i W[o, i]·x[r, i]) for W [{outputs}, {inputs}] packed in {panels} panels of {PanelWidth}; b may be null.</summary>"
                : $"/// <summary>y[r, o] (+)= b[o] + Σ_i W[o, i]·x[r, i] for W [{outputs}, {inputs}] packed in {panels} panels of {PanelWidth}; b may be null.</summary>");
            ParallelKernel(
                w,
                name,
                $"float* x, int rows, float* w, float* b, float* y{(gelu ? string.Empty : ", bool accumulate")}",
                fields: ["public float* X, W, B, Y;", "public int Rows;", "public bool Accumulate;", .. PackingCallField(inputs)],
                $"X = x, Rows = rows, W = w, B = b, Y = y, Accumulate = {(gelu ? "false" : "accumulate")}{PackingCallInitializer(inputs)}",
                ItemArguments(inputs, pairs, pairWidth, chunk, rowBlock),
                "(Row block, chunk of panel pairs) items",
                () =>
                {
                    w.Line($"const int Out = {outputs}, In = {inputs}, Pairs = {pairs}, PairChunk = {chunk}, Chunks = {Chunks(pairs, chunk)}, RowBlock = {rowBlock};");
                    w.Line("float* x = X, w = W, b = B, y = Y;");
                    w.Line("var accumulate = Accumulate;");
                    RowBlocks(w, outputs, inputs, element, gelu ? GeluBlock() : null);
                },
                claimed: true);
        });
    }

    /// <summary>
    /// Greedy decoding's LM head: tokens[r] = argmax_o Σ_i W[o, i]·x[r, i] (lowest o on ties) in the same
    /// pass as <see cref="Linear"/>, but without the [rows × outputs] logits: each thread writes a (row
    /// tile × chunk of panel pairs) block of outputs into its own scratch, which stays in its cache, and
    /// folds it into each row's best (<c>GreedyArgMax.Fold</c>) before the next tile overwrites it. At
    /// batch 2048 that saves writing and re-reading 400 MB of logits per step.
    /// </summary>
    public string LinearArgMax(int outputs, int inputs)
    {
        var (element, panels, pairs, pairWidth, chunk, rowBlock) = Layout(outputs, inputs);
        return Request($"Linear{outputs}x{inputs}ArgMax", (w, name) =>
        {
            w.Line($"/// <summary>tokens[r] = argmax_o Σ_i W[o, i]·x[r, i] for W [{outputs}, {inputs}] packed in {panels} panels of {PanelWidth}, the lowest o on ties; no logits are stored.</summary>");
            ParallelKernel(
                w,
                name,
                "float* x, int rows, float* w, int* tokens",
                fields: ["public float* X, W;", "public long* Best;", "public int Rows;", .. PackingCallField(inputs)],
                $"X = x, Rows = rows, W = w, Best = best{PackingCallInitializer(inputs)}",
                ItemArguments(inputs, pairs, pairWidth, chunk, rowBlock),
                "(Row block, chunk of panel pairs) items",
                () =>
                {
                    w.Line($"const int Out = {outputs}, In = {inputs}, Pairs = {pairs}, PairChunk = {chunk}, Chunks = {Chunks(pairs, chunk)}, RowBlock = {rowBlock}, BlockWidth = PairChunk * {pairWidth};");
                    w.Line("float* x = X, w = W, b = null;");
                    w.Line("const bool accumulate = false;");
                    RowBlocks(w, outputs, inputs, element, activation: null, argMax: true);
                },
                before: "long* best = GreedyArgMax.Begin(rows);",
                after: "GreedyArgMax.End(best, rows, tokens);",
                claimed: true);
        });
    }

    /// <summary>
    /// How a linear kernel walks W [outputs, inputs]: weight element type, 16-output panels, pairs of
    /// them (one multi-row tile each), the pairs per chunk (about <see cref="PanelChunkBytes"/>) and the
    /// rows per row block (about <see cref="RowBlockBytes"/>, whole tallest tiles).
    /// </summary>
    private (string Element, int Panels, int Pairs, int PairWidth, int Chunk, int RowBlock) Layout(int outputs, int inputs)
    {
        var panels = (outputs + PanelWidth - 1) / PanelWidth;
        var pairWidth = PanelWidth * PanelsPerTile;
        var pairs = (panels + PanelsPerTile - 1) / PanelsPerTile;
        return (
            bf16Weights ? "ushort" : "float",
            panels,
            pairs,
            pairWidth,
            Math.Max(1, Math.Min(PanelChunkBytes / (inputs * pairWidth * (bf16Weights ? 2 : 4)), pairs / MinChunks)),
            Math.Max(1, RowBlockBytes / (inputs * sizeof(float) * TileRows[0])) * TileRows[0]);
    }

    /// <summary>Chunks of <paramref name="chunk"/> panel pairs in a row block.</summary>
    private static int Chunks(int pairs, int chunk) => (pairs + chunk - 1) / chunk;

    /// <summary>
    /// The item count and the work per item (multiply-adds, which decides how many threads run) of a
    /// linear kernel: one item per (row block, chunk of panel pairs), row block by row block.
    /// </summary>
    private static string ItemArguments(int inputs, int pairs, int pairWidth, int chunk, int rowBlock) =>
        $"(rows + {rowBlock - 1}) / {rowBlock} * {Chunks(pairs, chunk)}, (long)Math.Min(rows, {rowBlock}) * {inputs} * {chunk * pairWidth}";

    /// <summary>The work struct's call stamp for <c>ThreadScratch.NeedsPacking</c>; only kernels that pack their rows take one.</summary>
    private static string[] PackingCallField(int inputs) => PackRows(inputs) ? ["public long Call;"] : [];

    private static string PackingCallInitializer(int inputs) => PackRows(inputs) ? ", Call = ThreadScratch.NextCall()" : string.Empty;

    /// <summary>
    /// Whether the multi-row tiles read packed copies of their rows: when a row is a multiple of 2 KiB
    /// long, a 12-row tile puts six or more of its input lines in one set of the 8-way L1 and they evict
    /// each other (measured on a 1200 × 768 × 3072 product, one core: 62 GFLOP/s in place, 92 with
    /// the rows 64 bytes further apart, 88 packed; at In = 768 packing cost 10%, so it is not done there).
    /// </summary>
    private static bool PackRows(int inputs) => inputs * sizeof(float) % 2048 == 0;

    /// <summary>
    /// A thread's items: each is one row block against one chunk of panel pairs, run as row tiles. With
    /// <paramref name="argMax"/> a row tile writes its chunk of outputs into a per-thread block of at
    /// most [12 × BlockWidth] (in L1 or L2), folded into Best right after, instead of into y.
    /// </summary>
    private void RowBlocks(SourceWriter w, int outputs, int inputs, string element, string? activation, bool argMax = false)
    {
        var pack = PackRows(inputs);
        var scratch = string.Join(" + ", new[] { pack ? "(long)RowBlock * In" : null, argMax ? $"{TileRows[0]} * BlockWidth" : null }.Where(part => part is not null));
        if (scratch.Length > 0)
        {
            w.Line($"var scratch = ThreadScratch.Get({scratch});");
        }

        if (pack)
        {
            w.Line("var packed = scratch;");
        }

        if (argMax)
        {
            w.Line(pack ? "var block = scratch + ((long)RowBlock * In);" : "var block = scratch;");
        }

        using (w.Block("for (var item = start; item < end; item++)"))
        {
            w.Line("var r0 = item / Chunks * RowBlock;");
            w.Line("var rowEnd = Math.Min(Rows, r0 + RowBlock);");
            w.Line("var q0 = item % Chunks * PairChunk;");
            w.Line("var q1 = Math.Min(Pairs, q0 + PairChunk);");
            if (activation is not null || argMax)
            {
                w.Line($"var o0 = q0 * {PanelWidth * PanelsPerTile};");
            }

            if (argMax)
            {
                w.Line($"var width = Math.Min(Out, q1 * {PanelWidth * PanelsPerTile}) - o0;");
            }

            w.Line("var r = r0;");
            if (pack)
            {
                w.Line("// The row block's tiles, packed once per thread: its later items of this block reuse them.");
                using (w.Block("if (ThreadScratch.NeedsPacking(Call, r0))"))
                {
                    RowTiles(w, "rowEnd", rows => w.Line($"Packing.PackRowTile(x + ((long)r * In), {rows}, In, packed + ((long)(r - r0) * In));"), singles: false);
                    w.Line("r = r0;");
                }

                w.Line();
            }

            var output = argMax ? new TileOutput("block - o0", "BlockWidth") : new TileOutput("y + ((long)r * Out)", "Out");
            RowTiles(w, "rowEnd", rows =>
            {
                PairLoop(w, rows, outputs, inputs, element, pack && rows > 1, output);
                if (argMax)
                {
                    w.Line($"GreedyArgMax.Fold(block, {rows}, BlockWidth, width, o0, Best + r); // before the next row tile reuses the block");
                }
            });
            if (activation is not null)
            {
                w.Line();
                w.Line($"{activation}(y + ((long)r0 * Out) + o0, rowEnd - r0, Out, Math.Min(Out, q1 * {PanelWidth * PanelsPerTile}) - o0); // this chunk's outputs are final");
            }
        }
    }

    /// <summary>Where a row tile's outputs go: row r starts at <see cref="Row"/> (then + o for its panel pair), rows <see cref="Stride"/> apart.</summary>
    private sealed record TileOutput(string Row, string Stride);

    /// <summary>
    /// The loop over a chunk's panel pairs for one row tile. A pair is two panels, except the last when
    /// the panel count is odd; the one-row kernel takes the two panels of a pair one after the other.
    /// </summary>
    private void PairLoop(SourceWriter w, int rows, int outputs, int inputs, string element, bool packed, TileOutput output)
    {
        var second = $" + {PanelWidth}";
        var evenPanels = (outputs + PanelWidth - 1) / PanelWidth % PanelsPerTile == 0;
        string Call(int tilePanels, string at)
        {
            var offset = at.Length == 0 ? "(long)o" : $"(long)(o{at})";
            var input = packed ? "packed + ((long)(r - r0) * In)" : "x + ((long)r * In)";
            return $"{Panel(rows, tilePanels, inputs, bf16Weights, packed ? rows : 0)}({input}, ({element}*)w + ({offset} * In), b == null ? null : b + o{at}, {output.Row} + o{at}, {output.Stride}, {Count(outputs, tilePanels == 1 ? at : second)}, accumulate);";
        }

        using (w.Block("for (var q = q0; q < q1; q++)"))
        {
            w.Line($"var o = q * {PanelWidth * PanelsPerTile};");
            if (rows == 1)
            {
                w.Line(Call(1, string.Empty));
                w.Line(evenPanels ? Call(1, second) : $"if (o{second} < Out) {Call(1, second)}");
            }
            else if (evenPanels)
            {
                w.Line(Call(PanelsPerTile, string.Empty));
            }
            else
            {
                w.Line($"if (o{second} < Out) {Call(PanelsPerTile, string.Empty)}");
                w.Line($"else {Call(1, string.Empty)}");
            }
        }
    }

    /// <summary>Outputs of the panel at o + at: 16, or fewer for the last panel when Out is not a multiple of 16.</summary>
    private static string Count(int outputs, string at) =>
        outputs % PanelWidth == 0 ? PanelWidth.ToString(System.Globalization.CultureInfo.InvariantCulture) : at.Length == 0 ? $"Math.Min({PanelWidth}, Out - o)" : $"Math.Min({PanelWidth}, Out - (o{at}))";

    /// <summary>One row against one 16-wide panel (also attention scores against a 16-position key block).</summary>
    public string PanelRow(int length) => Panel(1, 1, length, bf16: false);

    /// <summary>
    /// Attention scores of a group of query rows: q·k for every row against key blocks of 16 positions,
    /// which are [head_dim × 16] panels laid out like a linear layer's weights, so the row tiles of
    /// <see cref="Linear"/> apply: 12 rows × 2 blocks per step instead of one row × one block (whose
    /// four short FMA chains over head_dim inputs leave the FMA units mostly waiting).
    /// </summary>
    public string KeyScores(int headDim) => Request($"KeyScores{headDim}", (w, name) =>
    {
        w.Line($"/// <summary>scores[r·stride + t] = q_r·k_t for rows r &lt; count of a [count × {headDim}] query tile and positions t &lt; ends[r], rounded up to whole 16-position key blocks.</summary>");
        w.Line(Optimized);
        using (w.Block($"private static void {name}(float* queries, int count, int* ends, float* keys, float* scores, int stride)"))
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
                w.Line("float* pair = keys + ((long)t * HeadDim);");
                w.Line("var r = 0;");
                RowTiles(w, "count", rows =>
                {
                    if (rows == 1)
                    {
                        using (w.Block($"for (var b = t; b < Math.Min(ends[r], t + ({PanelsPerTile} * Block)); b += Block)"))
                        {
                            w.Line($"{PanelRow(headDim)}(queries + (r * HeadDim), keys + ((long)b * HeadDim), null, scores + (r * stride) + b, 0, Block, false);");
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
                        w.Line($"{Panel(rows, PanelsPerTile, headDim, bf16: false)}(queries + (r * HeadDim), pair, null, scores + (r * stride) + t, stride, Block, false);");
                    }

                    using (w.Block("else if (t < end)"))
                    {
                        w.Line($"{Panel(rows, 1, headDim, bf16: false)}(queries + (r * HeadDim), pair, null, scores + (r * stride) + t, stride, Block, false);");
                    }
                });
            }
        }
    });

    /// <summary>
    /// Rows r.. up to <paramref name="limit"/> in tiles of <see cref="TileRows"/> (as many of the tallest
    /// as fit, then at most one of each shorter), then one at a time; <paramref name="tile"/> writes the
    /// body for a tile of the given height starting at row r (height 1 for the single rows).
    /// </summary>
    private static void RowTiles(SourceWriter w, string limit, Action<int> tile, bool singles = true)
    {
        foreach (var rows in TileRows)
        {
            using (w.Block(rows == TileRows[0] ? $"for (; r + {rows} <= {limit}; r += {rows})" : $"if (r + {rows} <= {limit})"))
            {
                tile(rows);
                if (rows != TileRows[0])
                {
                    w.Line($"r += {rows};");
                }
            }

            w.Line();
        }

        if (singles)
        {
            using (w.Block($"for (; r < {limit}; r++)"))
            {
                tile(1);
            }
        }
    }

    /// <summary>
    /// <paramref name="rows"/> rows against <paramref name="panels"/> adjacent 16-output panels (the second
    /// starts In × 16 elements after the first; all but the last are full). One row uses four accumulator
    /// chains over alternating inputs; several rows use one accumulator per row and panel. Either way
    /// each step loads one row of every panel and broadcasts x[r, i], so each panel is read as a single
    /// sequential stream. A tile that needs more accumulators than a vector width has registers for
    /// runs as halves (panels first, then rows). With <paramref name="pack"/> &gt; 0 the rows are not at
    /// stride In but packed by <c>Packing.PackRowTile</c> as a tile of that many rows (of which this
    /// kernel may run a part).
    /// </summary>
    private string Panel(int rows, int panels, int length, bool bf16, int pack = 0) => Request($"Panel{rows}Row{(panels == 1 ? string.Empty : panels + "Panel")}In{length}{(pack > 0 ? $"Packed{pack}" : string.Empty)}{(bf16 ? "Bf16" : string.Empty)}", (w, name) =>
    {
        string Load(VectorFlavor flavor, string offset) => bf16 ? $"Bf16.Load{flavor.Type}(panel + {offset})" : $"{flavor.Type}.Load(panel + {offset})";
        string Weight(int panel, string i, int lane) => $"({(panel == 0 ? string.Empty : $"{panel * PanelWidth} * In + ")}({i} * {PanelWidth})){Plus(lane)}";

        w.Line($"/// <summary>{rows} row(s){(pack > 0 ? $" of a packed {pack}-row tile" : string.Empty)} × {panels} panel(s) over In = {length}: y[r·stride + j] (+)= b[j] + Σ_i x[r, i]·panel[i, j], the last panel's j &lt; count.</summary>");
        // A multi-row tile does 2 × rows FMAs per step for In steps, so its call is cheap; kept out of line
        // (and optimized from the first call) it leaves its callers small. Inlined, it measured the same.
        w.Line(rows == 1 && panels == 1 ? "[MethodImpl(MethodImplOptions.AggressiveInlining)]" : "[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]");
        using (w.Block($"private static void {name}(float* x, {(bf16 ? "ushort" : "float")}* panel, float* b, float* y, int stride, int count, bool accumulate)"))
        {
            w.Line($"const int In = {length}{(pack > 0 ? $", Pack = {pack}" : string.Empty)};");
            foreach (var flavor in VectorFlavor.All)
            {
                var v = flavor.Type;
                var halves = PanelWidth / flavor.Lanes;
                var store = PanelStore(flavor);
                if (rows * panels * halves > AccumulatorRegisters(flavor))
                {
                    using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                    {
                        if (panels > 1)
                        {
                            var one = Panel(rows, 1, length, bf16, pack);
                            w.Line($"{one}(x, panel, b, y, stride, {PanelWidth}, accumulate);");
                            w.Line($"{Panel(rows, panels - 1, length, bf16, pack)}(x, panel + ({PanelWidth} * In), b == null ? null : b + {PanelWidth}, y + {PanelWidth}, stride, count, accumulate);");
                        }
                        else
                        {
                            var half = Panel(rows / 2, 1, length, bf16, pack);
                            w.Line($"{half}(x, panel, b, y, stride, count, accumulate);");
                            w.Line($"{half}(x + ({rows / 2} * {(pack > 0 ? PanelWidth.ToString(System.Globalization.CultureInfo.InvariantCulture) : "In")}), panel, b, y + ({rows / 2} * stride), stride, count, accumulate);");
                        }

                        w.Line("return;");
                    }

                    w.Line();
                    continue;
                }

                using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                {
                    if (rows == 1 && panels == 1)
                    {
                        for (var k = 0; k < Chains; k++)
                        {
                            w.Line(string.Join(" ", Each(halves, h => $"var a{k}_{h} = {flavor.Zero};")));
                        }

                        var mainEnd = length / Chains * Chains;
                        using (w.Block($"for (nint i = 0; i < {mainEnd}; i += {Chains})"))
                        {
                            if (bf16)
                            {
                                PrefetchBf16Stream(w, flavor, $"panel + (i * {PanelWidth})", Chains * PanelWidth * sizeof(ushort));
                            }

                            for (var k = 0; k < Chains; k++)
                            {
                                var at = $"i{Plus(k)}";
                                w.Line($"var x{k} = {v}.Create(x[{at}]);");
                                w.Line(string.Join(" ", Each(halves, h => $"a{k}_{h} = {v}.FusedMultiplyAdd(x{k}, {Load(flavor, Weight(0, k == 0 ? "i" : $"(i + {k})", h * flavor.Lanes))}, a{k}_{h});")));
                            }
                        }

                        for (var i = mainEnd; i < length; i++)
                        {
                            w.Line(string.Join(" ", Each(halves, h => $"a0_{h} = {v}.FusedMultiplyAdd({v}.Create(x[{i}]), {Load(flavor, ((i * PanelWidth) + (h * flavor.Lanes)).ToString(System.Globalization.CultureInfo.InvariantCulture))}, a0_{h});")));
                        }

                        var sums = Each(halves, h => string.Join(" + ", Each(Chains, k => $"a{k}_{h}")));
                        w.Line($"{store}(y, b, count, accumulate, {string.Join(", ", sums)});");
                    }
                    else
                    {
                        for (var r = 0; r < rows; r++)
                        {
                            w.Line(string.Join(" ", Each(panels * halves, k => $"var a{r}_{k} = {flavor.Zero};")));
                        }

                        void Step(Func<int, string> input)
                        {
                            w.Line(string.Join(" ", Each(panels * halves, k => $"var w{k} = {Load(flavor, Weight(k / halves, "i", k % halves * flavor.Lanes))};")));
                            for (var r = 0; r < rows; r++)
                            {
                                w.Line($"var x{r} = {v}.Create({input(r)});");
                                w.Line(string.Join(" ", Each(panels * halves, k => $"a{r}_{k} = {v}.FusedMultiplyAdd(x{r}, w{k}, a{r}_{k});")));
                            }
                        }

                        if (pack > 0)
                        {
                            using (w.Block($"for (nint i0 = 0; i0 < In; i0 += {PanelWidth})"))
                            {
                                w.Line("float* block = x + (i0 * Pack);");
                                using (w.Block($"for (nint j = 0; j < {PanelWidth}; j++)"))
                                {
                                    w.Line("var i = i0 + j;");
                                    Step(r => $"block[{(r == 0 ? string.Empty : $"{r * PanelWidth} + ")}j]");
                                }
                            }
                        }
                        else
                        {
                            using (w.Block("for (nint i = 0; i < In; i++)"))
                            {
                                Step(r => r == 0 ? "x[i]" : $"x[{Offset(r, "In")} + i]");
                            }
                        }

                        for (var r = 0; r < rows; r++)
                        {
                            for (var p = 0; p < panels; p++)
                            {
                                var target = (r == 0 ? "y" : $"y + {Offset(r, "stride")}") + Plus(p * PanelWidth);
                                var bias = p == 0 ? "b" : $"b == null ? null : b + {p * PanelWidth}";
                                var count = p == panels - 1 ? "count" : PanelWidth.ToString(System.Globalization.CultureInfo.InvariantCulture);
                                w.Line($"{store}({target}, {bias}, {count}, accumulate, {string.Join(", ", Each(halves, h => $"a{r}_{(p * halves) + h}"))});");
                            }
                        }
                    }

                    w.Line("return;");
                }

                w.Line();
            }

            using (w.Block($"for (var r = 0; r < {rows}; r++)"))
            {
                using (w.Block($"for (var j = 0; j < {(panels == 1 ? "count" : $"{(panels - 1) * PanelWidth} + count")}; j++)"))
                {
                    w.Line("var sum = b == null ? 0f : b[j];");
                    w.Line($"var at = (j / {PanelWidth} * {PanelWidth} * In) + (j % {PanelWidth});");
                    using (w.Block("for (var i = 0; i < In; i++)"))
                    {
                        var input = pack > 0 ? $"x[(i / {PanelWidth} * {PanelWidth} * Pack) + (r * {PanelWidth}) + (i % {PanelWidth})]" : "x[(r * In) + i]";
                        w.Line(bf16
                            ? $"sum += {input} * Bf16.ToSingle(panel[at + (i * {PanelWidth})]);"
                            : $"sum += {input} * panel[at + (i * {PanelWidth})];");
                    }

                    w.Line("float* target = y + ((long)r * stride) + j;");
                    w.Line("*target = accumulate ? *target + sum : sum;");
                }
            }
        }
    });

    /// <summary>
    /// How far ahead of the one-row kernel's bf16 weight stream software prefetches run: 2 KiB on the
    /// AVX2 path (tuned on Zen 3), 4 KiB on the AVX-512 path, whose machines stream faster and so need more
    /// bytes in flight (Zen 5, `vanilla_31_bf16` at batch 1, alternating builds: none 735–1083 tok/s,
    /// 2 KiB 1046–1181, 4 KiB 1124–1336, 8 KiB 1180–1346).
    /// </summary>
    private static int PrefetchBytesAhead(VectorFlavor flavor) => flavor.Lanes == 16 ? 4096 : 2048;

    /// <summary>
    /// Prefetches the cache lines <see cref="PrefetchBytesAhead"/> beyond a step of <paramref name="stepBytes"/>
    /// bf16 weights at <paramref name="at"/>. The hardware prefetchers alone fall behind a bf16 stream, which
    /// has half the bytes per FMA of an f32 one. On Zen 3 (AVX2) they streamed bf16 panels at 8–12 GB/s where
    /// f32 panels streamed 15–19: a standalone two-thread copy of the loop over 35 MB went from 9.1–12.4 to
    /// 13.3–18.1 GB/s with these prefetches. On Zen 4 the AVX-512 path streamed bf16 at the triad bandwidth
    /// without them; on Zen 5 it streamed 28–42 GB/s of a 53 GB/s triad without them and 43–51 with them.
    /// </summary>
    private static void PrefetchBf16Stream(SourceWriter w, VectorFlavor flavor, string at, int stepBytes)
    {
        var ahead = PrefetchBytesAhead(flavor);
        var lines = Each(stepBytes / 64, line => $"Sse.Prefetch0({at} + {(ahead + (line * 64)) / sizeof(ushort)});");
        w.Line($"if (Sse.IsSupported) {{ {string.Join(" ", lines)} }} // {ahead} bytes ahead: the hardware prefetchers fall behind a bf16 stream");
    }

    /// <summary>
    /// Accumulators a tile may hold in registers, leaving room for its weight vectors and a broadcast:
    /// 24 of AVX-512's 32 registers; 12 of AVX2's 16 (a 256-bit path on an AVX-512 machine has 32, but
    /// the path must also fit AVX2 machines).
    /// </summary>
    private static int AccumulatorRegisters(VectorFlavor flavor) => flavor.Lanes == 16 ? 24 : 12;

    /// <summary>Adds bias (and the old value when accumulating) to one panel's 16 results and stores them.</summary>
    private string PanelStore(VectorFlavor flavor) => Request($"PanelStore{flavor.Type}", (w, name) =>
    {
        var v = flavor.Type;
        var halves = PanelWidth / flavor.Lanes;
        var parameters = string.Join(", ", Each(halves, h => $"{v}<float> s{h}"));
        w.Line($"/// <summary>y[j] (+)= b[j] + s[j] for j &lt; count, the 16 sums given as {halves} {v}(s).</summary>");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        using (w.Block($"private static void {name}(float* y, float* b, int count, bool accumulate, {parameters})"))
        {
            using (w.Block($"if (count == {PanelWidth})"))
            {
                for (var h = 0; h < halves; h++)
                {
                    var at = h == 0 ? "y" : $"y + {h * flavor.Lanes}";
                    w.Line($"if (b != null) s{h} += {v}.Load(b{Plus(h * flavor.Lanes)});");
                    w.Line($"if (accumulate) s{h} += {v}.Load({at});");
                    w.Line($"s{h}.Store({at});");
                }

                w.Line("return;");
            }

            // No stackalloc here: the JIT does not inline a method that has one, and a call after a tile's
            // loop makes it spill every accumulator on each step of the loop (measured: a third of the speed).
            var element = halves == 1 ? "s0.GetElement(j)" : $"j < {flavor.Lanes} ? s0.GetElement(j) : s1.GetElement(j - {flavor.Lanes})";
            using (w.Block("for (var j = 0; j < count; j++)"))
            {
                w.Line($"var value = ({element}) + (b == null ? 0f : b[j]);");
                w.Line("y[j] = accumulate ? y[j] + value : value;");
            }
        }
    });

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
            w.Line($"var r = {v}.FusedMultiplyAdd(n, {v}.Create(-0.693359375f), x);");
            w.Line($"r = {v}.FusedMultiplyAdd(n, {v}.Create(2.12194440e-4f), r);");
            w.Line($"var p = {v}.FusedMultiplyAdd(r, {v}.Create(1.9875691500e-4f), {v}.Create(1.3981999507e-3f));");
            foreach (var c in new[] { "8.3334519073e-3f", "4.1665795894e-2f", "1.6666665459e-1f", "5.0000001201e-1f" })
            {
                w.Line($"p = {v}.FusedMultiplyAdd(p, r, {v}.Create({c}));");
            }

            w.Line($"var er = {v}.FusedMultiplyAdd(p, r * r, r) + {v}<float>.One;");
            w.Line($"var twoToN = {v}.ShiftLeft({v}.ConvertToInt32Native(n) + {v}.Create(127), 23).AsSingle();");
            w.Line("return er * twoToN;");
        }
    });

    /// <summary>y = scale · Σ_t p[t]·V[t] over rows of a fixed width spaced by a fixed stride (attention's P·V).</summary>
    public string WeightedSum(int width, int stride) => Request($"WeightedSum{width}Stride{stride}", (w, name) =>
    {
        w.Line($"/// <summary>y[0..{width}) (+)= scale · Σ_t p[t]·values[t·{stride} ..], accumulated in registers.</summary>");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        using (w.Block($"private static void {name}(float* y, float* values, float* p, int count, float scale, bool accumulate)"))
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
                        w.Line($"float* row = values + ((long)t * {stride});");
                        w.Line(string.Join(" ", Each(vectors, k => $"a{k} = {v}.FusedMultiplyAdd(weight, {v}.Load(row + {k * flavor.Lanes}), a{k});")));
                    }

                    w.Line(string.Join(" ", Each(vectors, k => $"(accumulate ? {v}.FusedMultiplyAdd(a{k}, {v}.Create(scale), {v}.Load(y + {k * flavor.Lanes})) : a{k} * scale).Store(y + {k * flavor.Lanes});")));
                    w.Line("return;");
                }

                w.Line();
            }

            using (w.Block($"for (var i = 0; i < {width}; i++)"))
            {
                w.Line("var sum = 0f;");
                using (w.Block("for (var t = 0; t < count; t++)"))
                {
                    w.Line($"sum += p[t] * values[((long)t * {stride}) + i];");
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
        var one = WeightedSum(width, stride);
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
                                w.Line(string.Join(" ", Each(vectors, k => $"a{r}_{k} = {v}.FusedMultiplyAdd(p{r}, v{k}, a{r}_{k});")));
                            }
                        }

                        for (var r = 0; r < rows; r++)
                        {
                            w.Line($"float* y{r} = y{(r == 0 ? string.Empty : " + " + Offset(r, "yStride"))}; var s{r} = {v}.Create(scale[{r}]);");
                            foreach (var store in Each(vectors, k => $"(accumulate ? {v}.FusedMultiplyAdd(a{r}_{k}, s{r}, {v}.Load(y{r}{Plus(k * flavor.Lanes)})) : a{r}_{k} * s{r}).Store(y{r}{Plus(k * flavor.Lanes)});"))
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

    /// <summary>
    /// A kernel whose items run on several cores: the method copies its arguments into a work struct
    /// (<paramref name="fields"/>, set by <paramref name="initializer"/>) and passes it by reference to
    /// <c>Parallelism.For(<paramref name="forArguments"/>)</c> (with <paramref name="claimed"/>,
    /// <c>ForUneven</c>: threads claim one item at a time); <paramref name="body"/> is the struct's
    /// <c>Run(start, end)</c> over the <paramref name="items"/> [start, end). <paramref name="before"/> and
    /// <paramref name="after"/> are statements of the method around the parallel part.
    /// </summary>
    private static void ParallelKernel(SourceWriter w, string name, string parameters, string[] fields, string initializer, string forArguments, string items, Action body, string? before = null, string? after = null, bool claimed = false)
    {
        using (w.Block($"private static void {name}({parameters})"))
        {
            if (before is not null)
            {
                w.Line(before);
            }

            w.Line($"var work = new {name}Work {{ {initializer} }};");
            w.Line(claimed ? $"Parallelism.ForUneven({forArguments}, grain: 1, ref work);" : $"Parallelism.For({forArguments}, ref work);");
            if (after is not null)
            {
                w.Line(after);
            }
        }

        w.Line();
        WorkStruct(w, $"{name}Work", $"{items} [start, end) of {name}.", fields, body);
    }

    /// <summary>An <c>IParallelWork</c> struct: its fields, then <paramref name="body"/> as <c>Run(start, end)</c>.</summary>
    public static void WorkStruct(SourceWriter w, string name, string summary, string[] fields, Action body)
    {
        w.Line($"/// <summary>{summary}</summary>");
        using (w.Block($"private struct {name} : IParallelWork"))
        {
            foreach (var field in fields)
            {
                w.Line(field);
            }

            w.Line();
            w.Line(Optimized);
            using (w.Block("public readonly void Run(int start, int end)"))
            {
                body();
            }
        }
    }

    /// <summary>
    /// Exact GELU in place over a block of an output matrix: <c>rows</c> rows of <c>width</c> values at
    /// <c>stride</c>. The up-projection calls it on each block of outputs it has just finished, on the thread
    /// that computed them, while they are still in its cache.
    /// </summary>
    private string GeluBlock() => Request("GeluBlock", (w, name) =>
    {
        w.Line("/// <summary>y ← y/2 · (1 + erf(y/√2)) over rows × width values at stride (exact GELU; erf by Abramowitz–Stegun 7.1.26).</summary>");
        w.Line(Optimized);
        using (w.Block($"private static void {name}(float* y, int rows, int stride, int width)"))
        {
            using (w.Block("for (var r = 0; r < rows; r++)"))
            {
                w.Line("float* x = y + ((long)r * stride);");
                w.Line("var i = 0;");
                foreach (var flavor in VectorFlavor.All)
                {
                    var v = flavor.Type;
                    using (w.Block($"if ({v}.IsHardwareAccelerated)"))
                    {
                        using (w.Block($"for (; i + {flavor.Lanes} <= width; i += {flavor.Lanes})"))
                        {
                            w.Line($"var value = {v}.Load(x + i);");
                            w.Line($"var z = {v}.Abs(value * Gelu.InvSqrt2);");
                            w.Line($"var t = {v}<float>.One / ({v}<float>.One + (z * Gelu.P));");
                            w.Line($"var poly = (((((((((t * Gelu.A5) + {v}.Create(Gelu.A4)) * t) + {v}.Create(Gelu.A3)) * t) + {v}.Create(Gelu.A2)) * t) + {v}.Create(Gelu.A1)) * t);");
                            w.Line($"var erf = {v}<float>.One - (poly * {Exp(flavor)}(-(z * z)));");
                            w.Line($"erf = {v}.ConditionalSelect({v}.LessThan(value, {v}<float>.Zero), -erf, erf);");
                            w.Line($"(value * 0.5f * ({v}<float>.One + erf)).Store(x + i);");
                        }
                    }
                }

                using (w.Block("for (; i < width; i++)"))
                {
                    w.Line("x[i] = Gelu.Exact(x[i]);");
                }
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

    /// <summary>Writes every requested kernel; kernels requested while emitting (helpers) are written too.</summary>
    public void EmitAll(SourceWriter writer)
    {
        for (var i = 0; i < order.Count; i++)
        {
            writer.Line();
            kernels[order[i]](writer);
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

    /// <summary>" + n", or nothing for 0, so generated index expressions carry no "+ 0".</summary>
    private static string Plus(int n) => n == 0 ? string.Empty : $" + {n}";

    private static string Offset(int index, string stride) => index == 0 ? "0" : index == 1 ? stride : $"({index} * {stride})";

    private static IEnumerable<string> Each(int count, Func<int, string> item)
    {
        for (var k = 0; k < count; k++)
        {
            yield return item(k);
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
