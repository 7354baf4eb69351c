using System;
using System.Collections.Generic;
using BlockTransformer.Generators.Helpers;

namespace BlockTransformer.Generators.Emit;

/// <summary>
/// A SIMD width the emitted kernels are written for; the JIT keeps only the accelerated branch, the widest
/// the machine runs. Vector128 serves ARM64 (NEON, where Vector256 is not accelerated) and x64 without AVX2,
/// which would otherwise run the scalar loops. <paramref name="MultiplyAdd"/> is the method for a·b + c:
/// fused on the wide paths (every AVX2 machine has FMA), <c>MultiplyAddEstimate</c> on Vector128, which is
/// fused where the hardware has it (NEON) and a multiply then an add where it has not (x64 without FMA,
/// where <c>FusedMultiplyAdd</c> is emulated in software: 4x slower than the scalar loops, measured).
/// </summary>
internal sealed record VectorFlavor(string Type, int Lanes, string MultiplyAdd)
{
    public static readonly VectorFlavor[] All = { new("Vector512", 16, "FusedMultiplyAdd"), new("Vector256", 8, "FusedMultiplyAdd"), new("Vector128", 4, "MultiplyAddEstimate") };

    public string Zero => $"{Type}<float>.Zero";
}

/// <summary>
/// Emits shape-specialized kernels on request, once per distinct shape: callers ask for a kernel by
/// its sizes and get the method name back; <see cref="EmitAll"/> writes every requested method.
/// Each kernel has a Vector512, a Vector256 and a Vector128 path and a scalar path, with a scalar tail only when
/// the size is not a multiple of the vector width.
/// </summary>
internal sealed partial class KernelEmitter
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

    /// <summary>The element type of stored f32 or bf16 operands (weight panels, cached K/V): bf16 is kept as its bits.</summary>
    internal static string Element(bool bf16) => bf16 ? "ushort" : "float";

    /// <summary>A vector of floats loaded from <paramref name="address"/>, widened from bf16 when the operand is bf16.</summary>
    private static string LoadFloats(VectorFlavor flavor, string address, bool bf16) => bf16 ? $"Bf16.Load{flavor.Type}({address})" : $"{flavor.Type}.Load({address})";

    /// <summary>One stored element as a float.</summary>
    private static string Widened(string element, bool bf16) => bf16 ? $"Bf16.ToSingle({element})" : element;

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
