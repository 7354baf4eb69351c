using BlockTransformer.Runtime;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace BlockTransformer.Gpu;

/// <summary>Where generated ILGPU kernels run.</summary>
public enum GpuDeviceKind
{
    /// <summary>The first NVIDIA GPU the CUDA driver reports.</summary>
    Cuda,

    /// <summary>
    /// ILGPU's CPU accelerator as a small GPU: 32-wide warps, 2 warps per group, one multiprocessor.
    /// A correctness tool (each lane is an OS thread), never a fast path.
    /// </summary>
    CpuSimulator,
}

/// <summary>
/// An ILGPU context and accelerator, plus the device memory this process has allocated on it, so a
/// request that does not fit is refused with the bytes it needs before anything is allocated.
/// </summary>
public sealed class GpuDevice : IDisposable
{
    private readonly Context context;
    private long allocated;
    private long peak;

    private GpuDevice(Context context, Accelerator accelerator, GpuDeviceKind kind)
    {
        this.context = context;
        Accelerator = accelerator;
        Kind = kind;
    }

    public Accelerator Accelerator { get; }

    public GpuDeviceKind Kind { get; }

    public string Name => Accelerator.Name;

    /// <summary>Device memory in bytes: the GPU's total, or for the simulator the memory this process may use.</summary>
    public long MemoryBytes => Kind == GpuDeviceKind.Cuda
        ? Accelerator.MemorySize
        : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Bytes held by buffers allocated through <see cref="Allocate{T}"/>.</summary>
    public long AllocatedBytes => allocated;

    /// <summary>The most <see cref="AllocatedBytes"/> since <see cref="ResetPeak"/>: `bt bench` takes memory per sample from it.</summary>
    public long PeakBytes => peak;

    public void ResetPeak() => peak = allocated;

    public static GpuDevice Open(GpuDeviceKind kind)
    {
        if (kind == GpuDeviceKind.CpuSimulator)
        {
            var simulated = new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 2, numMultiprocessors: 1);
            var cpuContext = Context.Create(builder => builder.CPU(simulated).EnableAlgorithms().Optimize(OptimizationLevel.O1));
            return new GpuDevice(cpuContext, simulated.CreateAccelerator(cpuContext), kind);
        }

        var cudaContext = Context.Create(builder => builder.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var cuda = cudaContext.GetCudaDevices();
        if (cuda.Count == 0)
        {
            cudaContext.Dispose();
            throw new GpuException("no CUDA device found: the NVIDIA driver (libcuda.so) is missing or reports no GPU. Use --device cpu-sim to run the GPU kernels on ILGPU's CPU simulator.");
        }

        return new GpuDevice(cudaContext, cuda[0].CreateAccelerator(cudaContext), kind);
    }

    /// <summary>Throws <see cref="GpuException"/> unless <paramref name="bytes"/> more fit next to what is allocated.</summary>
    public void EnsureFits(long bytes, string what)
    {
        if (allocated + bytes > MemoryBytes)
        {
            throw new GpuException(
                $"{what} needs {ByteText.Format(bytes)} of device memory, but {Name} has {ByteText.Format(MemoryBytes - allocated)} available " +
                $"({ByteText.Format(MemoryBytes)} in all, {ByteText.Format(allocated)} already holding weights and caches). Use a smaller batch or shorter context.");
        }
    }

    /// <summary>A zeroed device buffer, counted against <see cref="MemoryBytes"/>.</summary>
    public DeviceBuffer<T> Allocate<T>(long length, string what)
        where T : unmanaged
    {
        var bytes = Math.Max(1, length) * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        EnsureFits(bytes, what);
        var buffer = Accelerator.Allocate1D<T>(Math.Max(1, length));
        buffer.MemSetToZero();
        allocated += bytes;
        peak = Math.Max(peak, allocated);
        return new DeviceBuffer<T>(this, buffer, bytes);
    }

    internal void Release(long bytes) => allocated -= bytes;

    public void Synchronize() => Accelerator.Synchronize();

    public void Dispose()
    {
        Accelerator.Dispose();
        context.Dispose();
    }
}

/// <summary>A device allocation that returns its bytes to the <see cref="GpuDevice"/> budget when disposed.</summary>
public sealed class DeviceBuffer<T> : IDisposable
    where T : unmanaged
{
    private readonly GpuDevice device;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> buffer;
    private readonly long bytes;
    private bool disposed;

    internal DeviceBuffer(GpuDevice device, MemoryBuffer1D<T, Stride1D.Dense> buffer, long bytes)
    {
        this.device = device;
        this.buffer = buffer;
        this.bytes = bytes;
    }

    public ArrayView<T> View => buffer.View;

    public long Length => buffer.Length;

    public void Dispose()
    {
        if (!disposed)
        {
            disposed = true;
            buffer.Dispose();
            device.Release(bytes);
        }
    }
}

/// <summary>A GPU request that cannot run: no device, not enough device memory, an unsupported option.</summary>
public sealed class GpuException(string message) : Exception(message);
