using System.Collections.Generic;
using System.Linq;
using BlockTransformer.Generators.Helpers;

namespace BlockTransformer.Generators.Emit;

// Linear layers on the GPU: for few rows, threads of (output, row tile, input slice) and a kernel that adds
// the slices; for many rows, a shared-memory tiled kernel; and the host launcher that picks one per call.
internal sealed partial class GpuKernelEmitter
{
    /// <summary>Inputs whose weight loads one linear-kernel thread issues together: its loop is latency-bound at small batch.</summary>
    public const int Unroll = 4;

    /// <summary>Rows per linear-kernel thread; equals GpuModel.RowTile, to which device buffers are padded.</summary>
    public const int Tile = 8;

    /// <summary>
    /// The tiled linear kernel's block: a group computes <see cref="Block"/> rows × <see cref="Block"/> outputs,
    /// each of its <see cref="BlockThreads"/> threads <see cref="ThreadTile"/> × <see cref="ThreadTile"/> of them
    /// (64 accumulators in registers: 16 shared-memory loads per 64 FMAs), over slices of <see cref="Depth"/>
    /// inputs staged in shared memory. 64 threads (two warps) is also the most the simulator runs per group.
    /// </summary>
    public const int Block = 64, ThreadTile = 8, BlockThreads = Side * Side, Depth = 16;

    /// <summary>Threads along each side of a tiled block; a thread's rows (and outputs) are this far apart.</summary>
    private const int Side = Block / ThreadTile;

    /// <summary>Row stride of the staged input slice ([Depth][Block + 1]): the pad spreads a column's stores over banks.</summary>
    private const int StagedStride = Block + 1;

    private readonly List<LinearLauncher> linearLaunchers = new();

    /// <summary>The host method of one linear layer shape and epilogue: its kernels' fields.</summary>
    private sealed record LinearLauncher(string Name, int Outputs, int Inputs, string Epilogue, string Partial, string Sum, string Tiled);

    /// <summary>
    /// y[r, o] = Σ_i x[r, i]·W[i, o] (+ b[o]) with W uploaded transposed [in, out]: the kernels and the host
    /// method that launches them, whose name is returned (<see cref="EmitLinearLaunchers"/> writes it). Few
    /// rows (decode) run <see cref="LinearPartial"/> and <see cref="LinearSum"/>; many (prefill, large batches)
    /// the shared-memory tiled <see cref="LinearTiled"/>.
    /// Epilogue: "" store, "Gelu" store gelu(·), "Add" accumulate into y (residual), "NoBias" store without bias (LM head).
    /// </summary>
    public string Linear(int outputs, int inputs, string epilogue)
    {
        var name = $"Linear{outputs}In{inputs}{epilogue}";
        if (!linearLaunchers.Any(l => l.Name == name))
        {
            linearLaunchers.Add(new LinearLauncher(name, outputs, inputs, epilogue, LinearPartial(outputs, inputs), LinearSum(outputs, epilogue), LinearTiled(outputs, inputs, epilogue)));
        }

        return name;
    }

    /// <summary>
    /// GEMM for many rows: group (output block, row block) stages a [Depth × Block] slice of the rows' inputs
    /// (transposed) and of W in shared memory, coalesced, then each thread accumulates its 8 × 8 outputs from
    /// them; rows and outputs of a thread are 8 apart, so a warp's shared loads fall in distinct banks or
    /// broadcast. One thread sums all inputs of an output, in order: no partial sums, epilogue applied directly.
    /// </summary>
    private string LinearTiled(int outputs, int inputs, string epilogue)
    {
        var hasBias = epilogue != "NoBias";
        var parameters = hasBias
            ? new[] { "ArrayView<float> x", "ArrayView<float> w", "ArrayView<float> b", "ArrayView<float> y", "int rows" }
            : new[] { "ArrayView<float> x", "ArrayView<float> w", "ArrayView<float> y", "int rows" };
        var tile = Enumerable.Range(0, ThreadTile).ToArray();
        bool raggedInputs = inputs % Depth != 0, raggedOutputs = outputs % Block != 0; // bounds checks only where a slice or block can overhang
        return Request(
            $"LinearTiled{outputs}In{inputs}{epilogue}",
            null,
            parameters,
            $"{EpilogueSummary(epilogue, "x·W")} for W [{inputs} in, {outputs} out]; group (block of {Block} outputs, block of {Block} rows) of {BlockThreads} threads, each {ThreadTile} × {ThreadTile} outputs (launch with TiledBlocks(rows, {outputs})).",
            w =>
            {
                w.Line($"var staged = SharedMemory.Allocate<float>({Depth * StagedStride}); // x slice, [input][row]");
                w.Line($"var weights = SharedMemory.Allocate<float>({Depth * Block}); // W slice, [input][output]");
                w.Line("var thread = Group.IdxX;");
                w.Line($"var tx = thread % {Side}; // outputs tx, tx + {Side}, …");
                w.Line($"var ty = thread / {Side}; // rows ty, ty + {Side}, …");
                w.Line($"var o0 = Grid.IdxX * {Block};");
                w.Line($"var r0 = Grid.IdxY * {Block};");
                w.Line(string.Join(" ", tile.SelectMany(i => tile.Select(j => $"float c{i}{j} = 0f;"))));
                using (w.Block($"for (var k0 = 0; k0 < {inputs}; k0 += {Depth})"))
                {
                    w.Line($"// Stage: element e of a slice is loaded by thread e % {BlockThreads}; consecutive threads read consecutive inputs of a row, and consecutive outputs of W.");
                    using (w.Block($"for (var e = thread; e < {Depth * Block}; e += {BlockThreads})"))
                    {
                        w.Line($"int row = r0 + (e / {Depth}), input = k0 + (e % {Depth});");
                        w.Line($"staged[((e % {Depth}) * {StagedStride}) + (e / {Depth})] = row < rows{(raggedInputs ? $" && input < {inputs}" : string.Empty)} ? x[((long)row * {inputs}) + input] : 0f;");
                        w.Line($"int k = k0 + (e / {Block}), o = o0 + (e % {Block});");
                        var inBounds = string.Join(" && ", new[] { raggedInputs ? $"k < {inputs}" : null, raggedOutputs ? $"o < {outputs}" : null }.Where(c => c is not null));
                        var load = $"w[((long)k * {outputs}) + o]";
                        w.Line($"weights[e] = {(inBounds.Length == 0 ? load : $"{inBounds} ? {load} : 0f")};");
                    }

                    w.Line("Group.Barrier();");
                    using (w.Block($"for (var k = 0; k < {Depth}; k++)"))
                    {
                        foreach (var i in tile)
                        {
                            w.Line($"var a{i} = staged[(k * {StagedStride}) + ty + {i * Side}];");
                        }

                        foreach (var j in tile)
                        {
                            w.Line($"var b{j} = weights[(k * {Block}) + tx + {j * Side}];");
                        }

                        foreach (var i in tile)
                        {
                            w.Line(string.Join(" ", tile.Select(j => $"c{i}{j} += a{i} * b{j};")));
                        }
                    }

                    w.Line("Group.Barrier(); // before the next slice overwrites the staged one");
                }

                foreach (var i in tile)
                {
                    using (w.Block($"if (r0 + ty + {i * Side} < rows)"))
                    {
                        w.Line($"long at = (long)(r0 + ty + {i * Side}) * {outputs};");
                        foreach (var j in tile)
                        {
                            var o = $"o0 + tx + {j * Side}";
                            var store = Store(epilogue, $"y[at + {o}]", hasBias ? $"c{i}{j} + b[{o}]" : $"c{i}{j}");
                            w.Line(raggedOutputs ? $"if ({o} < {outputs}) {store}" : store);
                        }
                    }
                }
            });
    }

    /// <summary>What a linear kernel with <paramref name="epilogue"/> computes from <paramref name="product"/>.</summary>
    private static string EpilogueSummary(string epilogue, string product) => epilogue switch
    {
        "Gelu" => $"y = gelu({product} + b)",
        "Add" => $"y += {product} + b (residual)",
        "NoBias" => $"y = {product}",
        _ => $"y = {product} + b",
    };

    /// <summary>The statement that applies <paramref name="epilogue"/> to <paramref name="value"/> (bias already added) and stores it at <paramref name="target"/>.</summary>
    private static string Store(string epilogue, string target, string value) => epilogue switch
    {
        "Gelu" => $"{target} = Gelu({value});",
        "Add" => $"{target} += {value};",
        _ => $"{target} = {value};",
    };

    /// <summary>
    /// Thread (output, tile, split) keeps RowTile rows in registers over one slice of the inputs, so each
    /// weight is read once per RowTile rows and a warp reads 32 consecutive outputs of one input row
    /// (coalesced). The inputs are split only when rows are few (GpuModel.InputSplits): then (output, tile)
    /// threads alone are too few to hide the latency of a loop over every input.
    /// </summary>
    private string LinearPartial(int outputs, int inputs) => Request(
        $"LinearPartial{outputs}In{inputs}",
        "Index3D",
        new[] { "ArrayView<float> x", "ArrayView<float> w", "ArrayView<float> partial", "int splits", "int paddedRows" },
        $"partial[split, r, o] = Σ_(i in slice split) x[r, i]·W[i, o] for W [{inputs} in, {outputs} out]; thread (output, tile of {Tile} rows, split).",
        w =>
        {
            w.Line("var o = index.X;");
            w.Line($"long r0 = (long)index.Y * {Tile};");
            w.Line($"var slice = ({inputs} + splits - 1) / splits;");
            w.Line("var first = index.Z * slice;");
            w.Line($"var end = XMath.Min({inputs}, first + slice);");
            w.Line(string.Join(" ", Enumerable.Range(0, Tile).Select(r => $"float a{r} = 0f;")));
            w.Line("var i = first;");
            w.Line($"// {Unroll} inputs per round: their weight loads are in flight together (one thread's loop is latency-bound).");
            using (w.Block($"for (; i + {Unroll - 1} < end; i += {Unroll})"))
            {
                for (var k = 0; k < Unroll; k++)
                {
                    w.Line($"var w{k} = w[((long)(i + {k}) * {outputs}) + o];");
                }

                for (var k = 0; k < Unroll; k++)
                {
                    for (var r = 0; r < Tile; r++)
                    {
                        w.Line($"a{r} += x[((r0 + {r}) * {inputs}) + i + {k}] * w{k};");
                    }
                }
            }

            using (w.Block("for (; i < end; i++)"))
            {
                w.Line($"var weight = w[((long)i * {outputs}) + o];");
                for (var r = 0; r < Tile; r++)
                {
                    w.Line($"a{r} += x[((r0 + {r}) * {inputs}) + i] * weight;");
                }
            }

            w.Line($"long at = ((((long)index.Z * paddedRows) + r0) * {outputs}) + o;");
            for (var r = 0; r < Tile; r++)
            {
                w.Line($"partial[at + {r * outputs}] = a{r};");
            }
        });

    /// <summary>Thread (output, row) adds the input slices in order, then bias and epilogue.</summary>
    private string LinearSum(int outputs, string epilogue)
    {
        var hasBias = epilogue != "NoBias";
        var parameters = hasBias
            ? new[] { "ArrayView<float> partial", "ArrayView<float> b", "ArrayView<float> y", "int splits", "int paddedRows" }
            : new[] { "ArrayView<float> partial", "ArrayView<float> y", "int splits", "int paddedRows" };
        return Request($"LinearSum{outputs}{epilogue}", "Index2D", parameters, EpilogueSummary(epilogue, "Σ partial") + $" over the input slices, rows of {outputs}; thread (output, row).", w =>
        {
            w.Line("var o = index.X;");
            w.Line("var row = index.Y;");
            w.Line("var sum = 0f;");
            using (w.Block("for (var s = 0; s < splits; s++)"))
            {
                w.Line($"sum += partial[((((long)s * paddedRows) + row) * {outputs}) + o];");
            }

            w.Line(Store(epilogue, $"y[((long)row * {outputs}) + o]", hasBias ? "sum + b[o]" : "sum"));
        });
    }

    /// <summary>The host methods of <see cref="Linear"/>: the tiled kernel for many rows; else split the inputs when rows are few, then the two launches.</summary>
    public void EmitLinearLaunchers(SourceWriter w)
    {
        foreach (var linear in linearLaunchers)
        {
            var hasBias = linear.Epilogue != "NoBias";
            var o = linear.Outputs;
            w.Line();
            w.Line($"/// <summary>{linear.Name}: from GpuModel.TiledMinRows rows the tiled GEMM, else partial products over input slices, then their sum{(hasBias ? " with bias" : string.Empty)}{(linear.Epilogue is "Gelu" or "Add" ? $" and {linear.Epilogue}" : string.Empty)}.</summary>");
            using (w.Block($"private void {linear.Name}(ArrayView<float> x, ArrayView<float> w, {(hasBias ? "ArrayView<float> b, " : string.Empty)}ArrayView<float> y, int rows, GpuScratch scratch)"))
            {
                using (w.Block("if (rows >= GpuModel.TiledMinRows)"))
                {
                    w.Line($"{linear.Tiled}(TiledBlocks(rows, {o}), x, w, {(hasBias ? "b, " : string.Empty)}y, rows);");
                    w.Line("return;");
                }

                w.Line();
                w.Line("var tiles = Tiles(rows);");
                w.Line($"var splits = InputSplits(tiles, {o}, {linear.Inputs});");
                w.Line("var paddedRows = tiles * RowTile;");
                w.Line($"var partial = scratch.Get(ScratchLinear, (long)splits * paddedRows * {o});");
                w.Line($"{linear.Partial}(new Index3D({o}, tiles, splits), x, w, partial, splits, paddedRows);");
                w.Line($"{linear.Sum}(new Index2D({o}, rows), partial, {(hasBias ? "b, " : string.Empty)}y, splits, paddedRows);");
            }
        }
    }
}
