using System;
using System.Collections.Generic;
using System.Linq;
using BlockTransformer.Generators.Helpers;

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
internal sealed partial class GpuKernelEmitter
{
    /// <summary>Lanes of a warp (CUDA's, and the simulator's as GpuDevice configures it).</summary>
    public const int WarpSize = 32;

    private readonly List<Kernel> kernels = new();

    /// <summary>kv_cache_dtype "bf16": K and V are cached as bf16 bits, rounded as the CPU rounds them.</summary>
    private readonly bool bf16KvCache;

    public GpuKernelEmitter(bool bf16KvCache) => this.bf16KvCache = bf16KvCache;

    /// <summary>The GpuKvCache views the attention kernels take.</summary>
    public (string Keys, string Values) CacheViews => bf16KvCache ? ("cache.KeysBf16", "cache.ValuesBf16") : ("cache.Keys", "cache.Values");

    /// <summary>The view type of the cached keys and values.</summary>
    private string KvView => bf16KvCache ? "ArrayView<ushort>" : "ArrayView<float>";

    /// <summary>A kernel; <paramref name="Index"/> null means explicitly grouped, launched with a KernelConfig (most: one warp per group).</summary>
    private sealed record Kernel(string Name, string? Index, string[] Parameters, Action<SourceWriter> Body, string Summary)
    {
        public string Field => char.ToLowerInvariant(Name[0]) + Name.Substring(1);

        /// <summary>The parameters' types; an explicitly grouped kernel's launcher takes a KernelConfig before them.</summary>
        public string ParameterTypes => string.Join(", ", Parameters.Select(p => p.Substring(0, p.LastIndexOf(' '))));

        public string Types => $"{Index ?? "KernelConfig"}, {ParameterTypes}";

        public string Signature => string.Join(", ", (Index is null ? Array.Empty<string>() : new[] { $"{Index} index" }).Concat(Parameters));
    }

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

    /// <summary>A loop of one warp lane over a row: elements lane, lane + 32, ….</summary>
    private static void LaneLoop(SourceWriter w, int length, string statement)
    {
        using (w.Block($"for (var i = lane; i < {length}; i += {WarpSize})"))
        {
            w.Line(statement);
        }
    }
}
