using System.Reflection;
using BlockTransformer.Gpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace BlockTransformer.Tests;

/// <summary>
/// ILGPU's PTX backend runs without a GPU: every generated kernel must compile to PTX for an H100 (asked
/// for sm_90; ILGPU 1.5.3 writes sm_80 PTX, which the driver JIT-compiles for sm_90), so a kernel the
/// CUDA backend cannot translate fails here rather than on the first GPU run.
/// The simulator tests check what the kernels compute; this checks that CUDA can take them.
/// </summary>
public sealed class GpuPtxTests
{
    public static TheoryData<string> GpuTypes => new()
    {
        "BlockTransformer.Models.TinyBlockModel+Gpu, BlockTransformer.Tests",
        "BlockTransformer.Models.TinyBlockGqaModel+Gpu, BlockTransformer.Tests",
        "BlockTransformer.Models.TinyVanillaMqaModel+Gpu, BlockTransformer.Tests",
        "BlockTransformer.Models.TinyBlockKvBf16Model+Gpu, BlockTransformer.Tests",
        "BlockTransformer.Models.BlockMainB4_85Model+Gpu, bt",
        "BlockTransformer.Models.Vanilla160Model+Gpu, bt",
        "BlockTransformer.Gpu.GpuModel, BlockTransformer.Gpu",
    };

    [Theory]
    [MemberData(nameof(GpuTypes))]
    public void EveryKernelCompilesToPtx(string typeName)
    {
        var type = Type.GetType(typeName, throwOnError: true)!;
        // Kernels are the static void methods taking an index first (implicitly grouped) or a view first
        // (explicitly grouped, one warp per group); helpers return values, launchers are instance methods.
        var kernels = type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
            .Where(m => m.ReturnType == typeof(void) && m.GetParameters() is [var first, ..] && (IsIndex(first.ParameterType) || first.ParameterType.Name.StartsWith("ArrayView", StringComparison.Ordinal)))
            .ToList();
        Assert.NotEmpty(kernels);

        using var context = Context.Create(builder => builder.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null!); // NVVM is optional (documented), the signature is not annotated
        int shuffles = 0, tiled = 0;
        foreach (var kernel in kernels)
        {
            var entry = IsIndex(kernel.GetParameters()[0].ParameterType)
                ? EntryPointDescription.FromImplicitlyGroupedKernel(kernel)
                : EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
            Assert.Contains(".target sm_", compiled.PTXAssembly);
            Assert.Contains($".entry Kernel_{kernel.Name}(", compiled.PTXAssembly);
            shuffles += compiled.PTXAssembly.Contains("shfl.sync", StringComparison.Ordinal) ? 1 : 0;
            if (kernel.Name.StartsWith("LinearTiled", StringComparison.Ordinal))
            {
                // Staged in shared memory behind group barriers, or it is not the tiled GEMM it claims to be.
                Assert.Contains(".shared", compiled.PTXAssembly);
                Assert.Contains("bar.sync", compiled.PTXAssembly);
                Assert.DoesNotContain(".local", compiled.PTXAssembly); // the 8 × 8 accumulators are registers, not a local array
                tiled++;
            }
        }

        // A model's LayerNorm and long attention are warp kernels: their sums must be warp shuffles in the PTX.
        Assert.True(type == typeof(GpuModel) || shuffles >= 2, $"{shuffles} kernels of {type.Name} use warp shuffles");
        Assert.True(type == typeof(GpuModel) || tiled >= 4, $"{type.Name} has {tiled} tiled linear kernels (QKV, dense, up, down at least)");
    }

    private static bool IsIndex(Type type) => type.Name is nameof(Index1D) or nameof(Index2D) or nameof(Index3D);
}
