using BlockTransformer.Runtime;
#if BT_GPU
using BlockTransformer.Gpu;
using BlockTransformer.Models;
#endif

namespace BlockTransformer.Cli;

/// <summary>
/// Where a command runs a model (`--device`): the generated CPU code (default), or in JIT builds of bt the
/// generated ILGPU kernels on CUDA or on ILGPU's CPU simulator. NativeAOT builds do not reference ILGPU,
/// which generates code at run time, so there only the CPU exists.
/// </summary>
internal abstract class Backend : IDisposable
{
    public const string Usage = "--device cpu|cuda|cpu-sim";

    /// <summary>"cpu" or the device's name, for progress and error messages.</summary>
    public abstract string Name { get; }

    public bool IsGpu => this is not CpuBackend;

    /// <summary>Bytes of weights, caches and activations this backend holds now, and the peak since <see cref="ResetPeak"/>.</summary>
    public abstract long CurrentBytes { get; }

    public abstract long PeakBytes { get; }

    /// <summary>
    /// The peak of the bytes buffers asked for since <see cref="ResetPeak"/>, before the CPU's rounding of large
    /// buffers to huge pages: memory per sample is taken from it (see <see cref="NativeMemoryStats"/>).
    /// </summary>
    public virtual long RequestedPeakBytes => PeakBytes;

    /// <summary>The bytes the live buffers asked for (<see cref="CurrentBytes"/> before rounding).</summary>
    public virtual long RequestedBytes => CurrentBytes;

    public abstract void ResetPeak();

    /// <summary>All the memory this backend's buffers may take: the machine's (or container's) for the CPU, the device's for a GPU.</summary>
    public abstract long CapacityBytes { get; }

    public static Backend Open(string? device) => device switch
    {
        null or "cpu" => new CpuBackend(),
#if BT_GPU
        "cuda" => new GpuBackend(GpuDeviceKind.Cuda),
        "cpu-sim" => new GpuBackend(GpuDeviceKind.CpuSimulator),
#else
        "cuda" or "cpu-sim" => throw new CliException($"--device {device} needs the JIT build of bt (dotnet bt.dll …): this binary was published with NativeAOT, and ILGPU, which runs the GPU kernels, generates code at run time."),
#endif
        var other => throw new CliException($"{Usage}: unknown device '{other}'."),
    };

    /// <summary>Errors of a GPU request (no device, not enough device memory, unsupported sampling) are user errors.</summary>
    public static bool IsUserError(Exception e) =>
#if BT_GPU
        e is GpuException;
#else
        false;
#endif

    /// <param name="onWarning">Told of weights with NaN or infinite values.</param>
    public abstract ILanguageModel Create(ModelDescriptor descriptor, string? weightsPath, ulong seed, Action<string>? onWarning = null);

    /// <param name="copyLogits">
    /// The callback needs logits (for --top-logits); on a GPU that costs a download per token, and on the
    /// CPU without it greedy decoding picks tokens inside the LM head and never writes logits.
    /// </param>
    public abstract TextGenerator Generator(ILanguageModel model, bool copyLogits);

    /// <summary>Refuses sampling options this backend cannot run, before any weights are loaded.</summary>
    public virtual void CheckSupported(SamplingOptions sampling)
    {
    }

    public virtual void Dispose()
    {
    }
}

/// <summary>The generated CPU code; memory is what <see cref="AlignedBuffer"/>s hold.</summary>
internal sealed class CpuBackend : Backend
{
    public override string Name => "cpu";

    public override long CurrentBytes => NativeMemoryStats.CurrentBytes;

    public override long PeakBytes => NativeMemoryStats.PeakBytes;

    public override long RequestedPeakBytes => NativeMemoryStats.RequestedPeakBytes;

    public override long RequestedBytes => NativeMemoryStats.RequestedBytes;

    public override void ResetPeak() => NativeMemoryStats.ResetPeak();

    public override long CapacityBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    public override ILanguageModel Create(ModelDescriptor descriptor, string? weightsPath, ulong seed, Action<string>? onWarning = null) =>
        weightsPath is null ? descriptor.CreateRandom(seed, descriptor.DefaultDType) : descriptor.Load(weightsPath, onWarning);

    public override TextGenerator Generator(ILanguageModel model, bool copyLogits)
    {
        var generator = TextGenerator.For(model);
        generator.LogitsInCallback = copyLogits;
        return generator;
    }
}

#if BT_GPU
/// <summary>The generated ILGPU kernels; memory is device memory allocated through <see cref="GpuDevice"/>.</summary>
internal sealed class GpuBackend(GpuDeviceKind kind) : Backend
{
    private readonly GpuDevice device = GpuDevice.Open(kind);

    public override string Name => device.Name;

    public override long CurrentBytes => device.AllocatedBytes;

    public override long PeakBytes => device.PeakBytes;

    public override void ResetPeak() => device.ResetPeak();

    public override long CapacityBytes => device.MemoryBytes;

    public override ILanguageModel Create(ModelDescriptor descriptor, string? weightsPath, ulong seed, Action<string>? onWarning = null)
    {
        var gpu = CompiledGpuModels.All.First(m => m.Info.Name == descriptor.Info.Name);
        return weightsPath is null ? gpu.CreateRandom(device, seed, descriptor.DefaultDType) : gpu.Load(device, weightsPath, onWarning);
    }

    public override TextGenerator Generator(ILanguageModel model, bool copyLogits) => GpuTextGenerator.For((GpuModel)model, copyLogits);

    public override void CheckSupported(SamplingOptions sampling) => DeviceSampling.From(sampling, draw: 0);

    public override void Dispose() => device.Dispose();
}
#endif
