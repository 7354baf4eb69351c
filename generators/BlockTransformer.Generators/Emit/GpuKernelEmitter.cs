using System;
using System.Collections.Generic;
using System.Linq;
using BlockTransformer.Generators.Helpers;
using BlockTransformer.Generators.Model;

namespace BlockTransformer.Generators.Emit;

/// <summary>
/// Emits ILGPU kernels on request, once per distinct shape, every size a literal or a model constant.
/// Most kernels are implicitly grouped (one thread per output element or row, in groups of
/// GpuModel.ImplicitGroupSize along the first index).
/// Those whose work is a reduction along a row (LayerNorm, long attention) run one warp per row or chunk
/// instead, lanes summing with shuffles: a single thread walking a row is a chain of dependent memory
/// latencies, which at batch 1 is the whole step. Warps are 32 wide on CUDA and on the simulator.
/// A request returns the name of the launcher field; <see cref="EmitFields"/>, <see cref="EmitLoads"/> and
/// <see cref="EmitKernels"/> write the fields, their loading and the kernel methods.
/// </summary>
internal sealed class GpuKernelEmitter
{
    /// <summary>Cache slots one long-attention warp covers before its partial result is merged.</summary>
    public const int AttentionChunk = 32;

    /// <summary>Logits one sampling thread scans for its top-k candidates.</summary>
    public const int SampleChunk = 256;

    /// <summary>Inputs whose weight loads one linear-kernel thread issues together: its loop is latency-bound at small batch.</summary>
    public const int Unroll = 4;

    /// <summary>Lanes of a warp (CUDA's, and the simulator's as GpuDevice configures it).</summary>
    public const int WarpSize = 32;

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

    private readonly List<Kernel> kernels = new();

    private readonly List<LinearLauncher> linearLaunchers = new();

    /// <summary>A kernel; <paramref name="Index"/> null means explicitly grouped, launched with a KernelConfig (most: one warp per group).</summary>
    private sealed record Kernel(string Name, string? Index, string[] Parameters, Action<SourceWriter> Body, string Summary)
    {
        public string Field => char.ToLowerInvariant(Name[0]) + Name.Substring(1);

        /// <summary>The parameters' types; an explicitly grouped kernel's launcher takes a KernelConfig before them.</summary>
        public string ParameterTypes => string.Join(", ", Parameters.Select(p => p.Substring(0, p.LastIndexOf(' '))));

        public string Types => $"{Index ?? "KernelConfig"}, {ParameterTypes}";

        public string Signature => string.Join(", ", (Index is null ? Array.Empty<string>() : new[] { $"{Index} index" }).Concat(Parameters));
    }

    /// <summary>The host method of one linear layer shape and epilogue: its kernels' fields.</summary>
    private sealed record LinearLauncher(string Name, int Outputs, int Inputs, string Epilogue, string Partial, string Sum, string Tiled);

    /// <summary>LayerNorm over rows of <paramref name="width"/>: one warp per row, lane i takes elements i, i + 32, ….</summary>
    public string LayerNorm(int width) => Request(
        $"LayerNorm{width}",
        null,
        new[] { "ArrayView<float> x", "ArrayView<float> weight", "ArrayView<float> bias", "ArrayView<float> y", "float eps" },
        $"y = (x - mean) / √(var + eps) · weight + bias over rows of {width}; one warp per row (launch with Warps(rows)).",
        w =>
        {
            w.Line($"long start = (long)Grid.IdxX * {width};");
            w.Line("var lane = Group.IdxX;");
            w.Line("float mean = 0f;");
            LaneLoop(w, width, "mean += x[start + i];");
            w.Line($"mean = WarpSum(mean) * (1f / {width});");
            w.Line("float variance = 0f;");
            using (w.Block($"for (var i = lane; i < {width}; i += {WarpSize})"))
            {
                w.Line("var centered = x[start + i] - mean;");
                w.Line("variance += centered * centered;");
            }

            w.Line($"var scale = XMath.Rsqrt((WarpSum(variance) * (1f / {width})) + eps);");
            w.Line("// Each lane rewrites only the elements it read, after both sums: y may be x.");
            LaneLoop(w, width, "y[start + i] = ((x[start + i] - mean) * scale * weight[i]) + bias[i];");
        });

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
    /// Long attention (block decoder, vanilla decoder), flash-decoding style: one warp per (head, chunk, row)
    /// runs an online softmax over its <see cref="AttentionChunk"/> cache slots, lane l holding dims l, l + 32, …
    /// of q and of the accumulator (a score is a warp sum), and writes its accumulator, max and sum;
    /// <see cref="AttentionCombine"/> merges the chunks. Chunks give the GPU parallelism along the context,
    /// where batch × heads alone is too few warps.
    /// </summary>
    public string AttentionChunked(DecoderPart part) => Request(
        $"{part.Prefix}AttentionChunk",
        null,
        new[] { "ArrayView<float> qkv", "ArrayView<float> keys", "ArrayView<float> values", "ArrayView<int> sequences", "ArrayView<int> slots", "ArrayView<float> partial", "long layerOffset", "int capacity", "int chunks" },
        $"{part.ForwardMethod}: softmax(q·Kᵀ/√d_h)·V over one chunk of {AttentionChunk} cache slots (online softmax); one warp per (head, chunk, row).",
        w =>
        {
            var p = part.Prefix;
            var headDim = part.Spec.HeadDim;
            var dims = Enumerable.Range(0, (headDim + WarpSize - 1) / WarpSize).ToArray();
            string Dim(int j) => j == 0 ? "lane" : $"lane + {j * WarpSize}";
            string Read(string view, string start, int j) => (j + 1) * WarpSize <= headDim
                ? $"{view}[{start} + {Dim(j)}]"
                : $"({Dim(j)} < {headDim} ? {view}[{start} + {Dim(j)}] : 0f)";
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
                w.Line($"var q{j} = {Read("qkv", "q", j)};");
                w.Line($"var acc{j} = 0f;");
            }

            w.Line("var max = float.NegativeInfinity;");
            w.Line("var sum = 0f;");
            using (w.Block("for (var t = first; t < end; t++)"))
            {
                w.Line($"long at = cache + ((long)t * {p}KvDim);");
                w.Line("var dot = " + string.Join(" + ", dims.Select(j => $"(q{j} * {Read("keys", "at", j)})")) + ";");
                w.Line($"var score = WarpSum(dot) * {p}AttentionScale;");
                w.Line("var next = XMath.Max(max, score);");
                w.Line("var rescale = XMath.Exp(max - next);");
                w.Line("var weight = XMath.Exp(score - next);");
                w.Line("sum = (sum * rescale) + weight;");
                foreach (var j in dims)
                {
                    w.Line($"acc{j} = (acc{j} * rescale) + (weight * {Read("values", "at", j)});");
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
    public string TopKCandidates() => Request(
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
                w.Line("count = InsertCandidate(best, bestIds, count, k, logits[((long)row * VocabSize) + id], id);");
            }

            w.Line($"long output = (((long)row * SampleChunks) + chunk) * GpuModel.MaxTopK;");
            using (w.Block("for (var i = 0; i < k; i++)"))
            {
                w.Line("values[output + i] = i < count ? best[i] : float.NegativeInfinity;");
                w.Line("ids[output + i] = i < count ? bestIds[i] : -1;");
            }
        });

    /// <summary>
    /// Greedy sampling, step 1: the largest logit of each <see cref="SampleChunk"/> ids and its id, the lowest id
    /// among equals, NaN skipped (the CPU's greedy pick), written as the chunk's only candidate. One warp per
    /// (chunk, row): lanes read the chunk coalesced and merge with shuffles. ncu put the general top-k kernel,
    /// one thread scanning each chunk, at 46 µs per token at batch 1 (197 threads for a 50304-id row).
    /// </summary>
    public string GreedyCandidates() => Request(
        "GreedyCandidates",
        null,
        new[] { "ArrayView<float> logits", "ArrayView<float> values", "ArrayView<int> ids" },
        $"Greedy step 1: the largest logit of ids [{SampleChunk}·chunk, {SampleChunk}·(chunk + 1)) of one row and its lowest id; one warp per (chunk, row).",
        w =>
        {
            w.Line("var chunk = Grid.IdxX;");
            w.Line("var row = Grid.IdxY;");
            w.Line("var lane = Group.IdxX;");
            w.Line("var best = float.NegativeInfinity;");
            w.Line("var bestId = -1; // none yet: a lane whose logits are all NaN keeps it and never wins below");
            w.Line($"var end = XMath.Min(VocabSize, (chunk + 1) * {SampleChunk});");
            using (w.Block($"for (var id = (chunk * {SampleChunk}) + lane; id < end; id += {WarpSize})"))
            {
                w.Line("var value = logits[((long)row * VocabSize) + id];");
                using (w.Block("if (value > best || (bestId < 0 && !float.IsNaN(value))) // ids rise, so equals keep the first"))
                {
                    w.Line("best = value;");
                    w.Line("bestId = id;");
                }
            }

            using (w.Block($"for (var mask = {WarpSize / 2}; mask > 0; mask >>= 1)"))
            {
                w.Line("var otherValue = Warp.ShuffleXor(best, mask);");
                w.Line("var otherId = Warp.ShuffleXor(bestId, mask);");
                using (w.Block("if (otherId >= 0 && (bestId < 0 || otherValue > best || (otherValue == best && otherId < bestId)))"))
                {
                    w.Line("best = otherValue;");
                    w.Line("bestId = otherId;");
                }
            }

            using (w.Block("if (lane == 0)"))
            {
                w.Line("long output = (((long)row * SampleChunks) + chunk) * GpuModel.MaxTopK;");
                w.Line("values[output] = best;");
                w.Line("ids[output] = bestId;");
            }
        });

    /// <summary>
    /// Sampling, step 2: one warp per row. Lane l merges the candidates of its contiguous run of chunks (in id
    /// order, so equal values keep the earlier id), writes its top k over the first chunk of its run (read by
    /// it alone), and after a barrier lane 0 merges the lanes' lists in lane order into the row's top k. Then
    /// it picks the first (greedy) or draws as the CPU sampler does: p_i ∝ e^((l_i - l_0)/T), target = u·Σp,
    /// walking down the sorted list; u is draw <c>draw</c> of the row's SplitMix64 stream.
    /// </summary>
    public string SampleFromCandidates() => Request(
        "SampleFromCandidates",
        null,
        new[] { "ArrayView<float> values", "ArrayView<int> ids", "ArrayView<int> tokens", "int k", "int greedy", "float temperature", "ulong seed", "int draw" },
        "Sampling step 2: top k of the row from the chunk candidates (lanes merge runs of chunks, then lane 0 the lanes), then greedy or temperature sampling; one warp per row.",
        w =>
        {
            w.Line("var row = Grid.IdxX;");
            w.Line("var lane = Group.IdxX;");
            w.Line($"const int ChunksPerLane = (SampleChunks + {WarpSize - 1}) / {WarpSize};");
            w.Line("var best = LocalMemory.Allocate<float>(GpuModel.MaxTopK);");
            w.Line("var bestIds = LocalMemory.Allocate<int>(GpuModel.MaxTopK);");
            w.Line("var count = 0;");
            w.Line("var own = lane * ChunksPerLane;");
            using (w.Block("for (var c = own; c < XMath.Min(SampleChunks, own + ChunksPerLane); c++)"))
            {
                MergeChunk(w, "c");
            }

            using (w.Block("if (own < SampleChunks)"))
            {
                w.Line("long first = (((long)row * SampleChunks) + own) * GpuModel.MaxTopK;");
                using (w.Block("for (var i = 0; i < k; i++)"))
                {
                    w.Line("values[first + i] = i < count ? best[i] : float.NegativeInfinity;");
                    w.Line("ids[first + i] = i < count ? bestIds[i] : -1;");
                }
            }

            w.Line("Group.Barrier();");
            using (w.Block("if (lane != 0)"))
            {
                w.Line("return;");
            }

            w.Line("count = 0;");
            using (w.Block($"for (var c = 0; c < SampleChunks; c += ChunksPerLane)"))
            {
                MergeChunk(w, "c");
            }

            using (w.Block("if (count == 0)"))
            {
                w.Line("tokens[row] = 0; // every logit NaN: id 0, as the CPU's greedy pick");
                w.Line("return;");
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
            w.Line(kernel.Index is null
                ? $"{kernel.Field} = accelerator.LoadStreamKernel<{kernel.ParameterTypes}>({kernel.Name});"
                : $"{kernel.Field} = accelerator.LoadImplicitlyGroupedStreamKernel<{kernel.Types}>({kernel.Name}, GpuModel.ImplicitGroupSize);");
        }
    }

    public void EmitKernels(SourceWriter w)
    {
        foreach (var kernel in kernels)
        {
            w.Line();
            w.Line($"/// <summary>{kernel.Summary}</summary>");
            using (w.Block($"private static void {kernel.Name}({kernel.Signature})"))
            {
                kernel.Body(w);
            }
        }
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

    private string Request(string name, string? index, string[] parameters, string summary, Action<SourceWriter> body)
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

    /// <summary>Inserts the valid candidates of chunk <paramref name="chunk"/> of the row into best/bestIds.</summary>
    private static void MergeChunk(SourceWriter w, string chunk)
    {
        w.Line($"long first = (((long)row * SampleChunks) + {chunk}) * GpuModel.MaxTopK;");
        using (w.Block("for (var i = 0; i < k; i++)"))
        {
            using (w.Block("if (ids[first + i] >= 0)"))
            {
                w.Line("count = InsertCandidate(best, bestIds, count, k, values[first + i], ids[first + i]);");
            }
        }
    }

    /// <summary>A loop of one warp lane over a row: elements lane, lane + 32, ….</summary>
    private static void LaneLoop(SourceWriter w, int length, string statement)
    {
        using (w.Block($"for (var i = lane; i < {length}; i += {WarpSize})"))
        {
            w.Line(statement);
        }
    }

    private static string Nest(string function, string[] arguments) => arguments.Length == 1
        ? arguments[0]
        : $"{function}({arguments[0]}, {Nest(function, arguments.Skip(1).ToArray())})";
}
