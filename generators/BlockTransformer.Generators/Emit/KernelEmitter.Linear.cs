using System;
using System.Linq;
using BlockTransformer.Generators.Helpers;

namespace BlockTransformer.Generators.Emit;

// Linear layers: y = b + W·x over weights packed in 16-output panels, cut into (row block, chunk of panel
// pairs) items and run as register tiles of 12, 8, 4 and 1 rows; also the fused GELU epilogue.
internal sealed partial class KernelEmitter
{
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
            Element(bf16Weights),
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
        string Load(VectorFlavor flavor, string offset) => LoadFloats(flavor, $"panel + {offset}", bf16);
        string Weight(int panel, string i, int lane) => $"({(panel == 0 ? string.Empty : $"{panel * PanelWidth} * In + ")}({i} * {PanelWidth})){Plus(lane)}";

        w.Line($"/// <summary>{rows} row(s){(pack > 0 ? $" of a packed {pack}-row tile" : string.Empty)} × {panels} panel(s) over In = {length}: y[r·stride + j] (+)= b[j] + Σ_i x[r, i]·panel[i, j], the last panel's j &lt; count.</summary>");
        // A multi-row tile does 2 × rows FMAs per step for In steps, so its call is cheap; kept out of line
        // (and optimized from the first call) it leaves its callers small. Inlined, it measured the same.
        w.Line(rows == 1 && panels == 1 ? "[MethodImpl(MethodImplOptions.AggressiveInlining)]" : "[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]");
        using (w.Block($"private static void {name}(float* x, {Element(bf16)}* panel, float* b, float* y, int stride, int count, bool accumulate)"))
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
                                w.Line(string.Join(" ", Each(halves, h => $"a{k}_{h} = {v}.{flavor.MultiplyAdd}(x{k}, {Load(flavor, Weight(0, k == 0 ? "i" : $"(i + {k})", h * flavor.Lanes))}, a{k}_{h});")));
                            }
                        }

                        for (var i = mainEnd; i < length; i++)
                        {
                            w.Line(string.Join(" ", Each(halves, h => $"a0_{h} = {v}.{flavor.MultiplyAdd}({v}.Create(x[{i}]), {Load(flavor, ((i * PanelWidth) + (h * flavor.Lanes)).ToString(System.Globalization.CultureInfo.InvariantCulture))}, a0_{h});")));
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
                                w.Line(string.Join(" ", Each(panels * halves, k => $"a{r}_{k} = {v}.{flavor.MultiplyAdd}(x{r}, w{k}, a{r}_{k});")));
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
                        w.Line($"sum += {input} * {Widened($"panel[at + (i * {PanelWidth})]", bf16)};");
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
    /// the path must also fit AVX2 machines), and 12 on the 128-bit path too, which must fit x64's 16
    /// (ARM64 has 32 NEON registers).
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
            string Element(int h) => h == halves - 1
                ? $"s{h}.GetElement(j{(h == 0 ? string.Empty : $" - {h * flavor.Lanes}")})"
                : $"j < {(h + 1) * flavor.Lanes} ? s{h}.GetElement(j{(h == 0 ? string.Empty : $" - {h * flavor.Lanes}")}) : {Element(h + 1)}";
            using (w.Block("for (var j = 0; j < count; j++)"))
            {
                w.Line($"var value = ({Element(0)}) + (b == null ? 0f : b[j]);");
                w.Line("y[j] = accumulate ? y[j] + value : value;");
            }
        }
    });

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
}
