using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BlockTransformer.Runtime;

/// <summary>
/// Measures this machine's FP32 FMA peak (independent FMA chains in registers on every core) and its
/// memory bandwidth (STREAM triad a = b + s·c over arrays far larger than the caches, all cores).
/// </summary>
public static unsafe class Calibration
{
    private const int Chains = 12;

    /// <summary>
    /// What a measurement depends on, to file it under: the CPU (vendor, family and model from CPUID, and
    /// its brand string), the widest vector the kernels use, and the thread count. A calibration cached
    /// on another machine (a cloud VM can move to another CPU) or with another BT_THREADS does not apply.
    /// ("512-bit vectors" was "AVX-512" before the 512-bit FMA peak was measured, so those entries are redone.)
    /// </summary>
    public static string MachineKey()
    {
        var vectors = Vector512.IsHardwareAccelerated ? "512-bit vectors" : Vector256.IsHardwareAccelerated ? "256-bit vectors" : "128-bit vectors";
        return $"{CpuName()}, {vectors}, {Parallelism.MaxThreads} thread{(Parallelism.MaxThreads == 1 ? string.Empty : "s")}";
    }

    private static string CpuName()
    {
        if (!X86Base.IsSupported)
        {
            return $"{RuntimeInformation.ProcessArchitecture} CPU, {Environment.ProcessorCount} cores";
        }

        var (_, b, c, d) = X86Base.CpuId(0, 0);
        var vendor = Ascii(b, d, c);

        // CPUID leaf 1: family 0xF adds the extended family; families 6 and 0xF put the extended model on top.
        var signature = X86Base.CpuId(1, 0).Eax;
        var family = (signature >> 8) & 0xF;
        var model = (signature >> 4) & 0xF;
        if (family == 0xF)
        {
            family += (signature >> 20) & 0xFF;
        }

        if (family is 6 or >= 0xF)
        {
            model |= ((signature >> 16) & 0xF) << 4;
        }

        // The brand string: 48 characters in leaves 0x80000002..4, when the CPU has them.
        var name = (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax >= 0x80000004
            ? string.Concat(Enumerable.Range(0, 3).Select(leaf => X86Base.CpuId(unchecked((int)0x80000002) + leaf, 0)).Select(r => Ascii(r.Eax, r.Ebx, r.Ecx, r.Edx))).TrimEnd('\0').Trim()
            : string.Empty;
        return $"{vendor} family {family} model {model}{(name.Length > 0 ? $" ({name})" : string.Empty)}";
    }

    /// <summary>CPUID registers as the ASCII text they hold, four characters each, lowest byte first.</summary>
    private static string Ascii(params int[] registers) =>
        System.Text.Encoding.ASCII.GetString(registers.SelectMany(BitConverter.GetBytes).ToArray());

    public static MachinePeaks Measure()
    {
        var threads = Parallelism.MaxThreads;
        return new MachinePeaks(Best(3, () => FmaPeak(threads)), Best(5, () => TriadBandwidth(threads)));
    }

    private static double Best(int runs, Func<double> measure) => Enumerable.Range(0, runs).Max(_ => measure());

    /// <summary>
    /// The faster of 256-bit and (where accelerated) 512-bit FMAs: Zen 4 runs a 512-bit FMA as two 256-bit
    /// halves, the same FLOP rate, but Zen 5 has full-width units, and a 256-bit loop there reports half
    /// the peak (measured: 205.6 GFLOP/s on two Zen 5 cores, while prefill reached 287.6 with 512-bit tiles).
    /// Without 256-bit vectors (ARM64, x64 without AVX2) the kernels run 128-bit vectors, and so does this.
    /// </summary>
    private static double FmaPeak(int threads) =>
        Vector512.IsHardwareAccelerated ? Math.Max(FmaPeak<Vector256<float>>(threads), FmaPeak<Vector512<float>>(threads))
        : Vector256.IsHardwareAccelerated ? FmaPeak<Vector256<float>>(threads)
        : FmaPeak<Vector128<float>>(threads);

    private static double FmaPeak<TVector>(int threads)
        where TVector : struct
    {
        const long iterations = 20_000_000;
        var clock = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            Chain(Splat<TVector>(0.999f), Splat<TVector>(1e-7f), iterations));
        return 2.0 * threads * iterations * Chains * (Unsafe.SizeOf<TVector>() / sizeof(float)) / clock.Elapsed.TotalSeconds;
    }

    // Optimized from the first call: one long loop would otherwise run as tier-0/OSR code and under-report
    // the peak (measured: 163 instead of 233 GFLOP/s on two Zen 4 cores).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static TVector Chain<TVector>(TVector a, TVector b, long iterations)
        where TVector : struct
    {
        var (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11) = (b, b, b, b, b, b, b, b, b, b, b, b);
        for (long i = 0; i < iterations; i++)
        {
            c0 = Fma(c0, a, b); c1 = Fma(c1, a, b); c2 = Fma(c2, a, b); c3 = Fma(c3, a, b);
            c4 = Fma(c4, a, b); c5 = Fma(c5, a, b); c6 = Fma(c6, a, b); c7 = Fma(c7, a, b);
            c8 = Fma(c8, a, b); c9 = Fma(c9, a, b); c10 = Fma(c10, a, b); c11 = Fma(c11, a, b);
        }

        // Folded into one result so that the JIT cannot drop any chain.
        return Fma(Fma(Fma(Fma(c0, c1, c2), c3, c4), Fma(Fma(c5, c6, c7), c8, c9), c10), c11, b);
    }

    // c·a + b at TVector's width; the JIT compiles the typeof tests and casts away for each struct type. At
    // 128 bits a multiply-add the kernels' way: fused where the hardware has FMA, else a multiply and an add.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Fma<TVector>(TVector c, TVector a, TVector b)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector512<float>)
            ? (TVector)(object)Vector512.FusedMultiplyAdd((Vector512<float>)(object)c, (Vector512<float>)(object)a, (Vector512<float>)(object)b)
            : typeof(TVector) == typeof(Vector256<float>)
            ? (TVector)(object)Vector256.FusedMultiplyAdd((Vector256<float>)(object)c, (Vector256<float>)(object)a, (Vector256<float>)(object)b)
            : (TVector)(object)Vector128.MultiplyAddEstimate((Vector128<float>)(object)c, (Vector128<float>)(object)a, (Vector128<float>)(object)b);

    private static TVector Splat<TVector>(float value)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector512<float>) ? (TVector)(object)Vector512.Create(value)
        : typeof(TVector) == typeof(Vector256<float>) ? (TVector)(object)Vector256.Create(value)
        : (TVector)(object)Vector128.Create(value);

    /// <summary>Bytes per second of a = b + s·c, counting the three arrays once each (STREAM's convention).</summary>
    private static double TriadBandwidth(int threads)
    {
        const long length = 32L << 20; // 128 MiB per array
        using var a = new AlignedBuffer(length);
        using var b = new AlignedBuffer(length);
        using var c = new AlignedBuffer(length);
        float* pa = a.Pointer, pb = b.Pointer, pc = c.Pointer;
        var clock = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var start = length * t / threads / 16 * 16;
            var end = t == threads - 1 ? length : length * (t + 1) / threads / 16 * 16;
            // Vector<float>: 256 bits with AVX2, 128 on ARM64 and older x64, whose FMA would be emulated.
            var s = new Vector<float>(3f);
            for (var i = start; i < end; i += Vector<float>.Count)
            {
                Vector.MultiplyAddEstimate(s, Vector.Load(pc + i), Vector.Load(pb + i)).Store(pa + i);
            }
        });
        return 3.0 * length * sizeof(float) / clock.Elapsed.TotalSeconds;
    }
}
