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
        "BlockTransformer.Models.BlockMainB4_85Model+Gpu, bt",
        "BlockTransformer.Models.Vanilla160Model+Gpu, bt",
        "BlockTransformer.Gpu.GpuModel, BlockTransformer.Gpu",
    };

    [Theory]
    [MemberData(nameof(GpuTypes))]
    public void EveryKernelCompilesToPtx(string typeName)
    {
        var type = Type.GetType(typeName, throwOnError: true)!;
        var kernels = type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
            .Where(m => m.GetParameters() is [var first, ..] && first.ParameterType.Name is nameof(Index1D) or nameof(Index2D) or nameof(Index3D))
            .ToList();
        Assert.NotEmpty(kernels);

        using var context = Context.Create(builder => builder.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null!); // NVVM is optional (documented), the signature is not annotated
        foreach (var kernel in kernels)
        {
            var entry = EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
            Assert.Contains(".target sm_", compiled.PTXAssembly);
            Assert.Contains($".entry Kernel_{kernel.Name}(", compiled.PTXAssembly);
        }
    }
}
