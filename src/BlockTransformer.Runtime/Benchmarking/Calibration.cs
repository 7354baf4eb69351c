using System.Diagnostics;
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
    /// </summary>
    public static string MachineKey()
    {
        var vectors = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "256-bit vectors" : "no 256-bit vectors";
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
    /// 256-bit FMAs only: Zen 4 issues two 256-bit or one 512-bit FMA per cycle, the same FLOP rate,
    /// and every x86-64-v3 machine can run this.
    /// </summary>
    private static double FmaPeak(int threads)
    {
        const long iterations = 20_000_000;
        var clock = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            Chain(Vector256.Create(0.999f), Vector256.Create(1e-7f), iterations));
        return 2.0 * threads * iterations * Chains * Vector256<float>.Count / clock.Elapsed.TotalSeconds;
    }

    // Optimized from the first call: one long loop would otherwise run as tier-0/OSR code and under-report
    // the peak (measured: 163 instead of 233 GFLOP/s on two Zen 4 cores).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static float Chain(Vector256<float> a, Vector256<float> b, long iterations)
    {
        var (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11) = (b, b, b, b, b, b, b, b, b, b, b, b);
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b);
            c2 = Vector256.FusedMultiplyAdd(c2, a, b); c3 = Vector256.FusedMultiplyAdd(c3, a, b);
            c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b);
            c8 = Vector256.FusedMultiplyAdd(c8, a, b); c9 = Vector256.FusedMultiplyAdd(c9, a, b);
            c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
        }

        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

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
            var s = Vector256.Create(3f);
            for (var i = start; i < end; i += 8)
            {
                Vector256.FusedMultiplyAdd(s, Vector256.Load(pc + i), Vector256.Load(pb + i)).Store(pa + i);
            }
        });
        return 3.0 * length * sizeof(float) / clock.Elapsed.TotalSeconds;
    }
}
