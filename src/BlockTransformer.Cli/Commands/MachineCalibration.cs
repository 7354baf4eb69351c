using System.Globalization;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>
/// This machine's peak FLOP/s and bandwidth for the cost model: given on the command line, read from
/// the cache written by `bt bench --calibrate` for this CPU and thread count, or measured once and cached.
/// </summary>
internal static class MachineCalibration
{
    private static string CachePath => Path.Combine(
        Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"),
        "blocktransformer",
        "machine-peaks.txt");

    public static MachinePeaks Load(bool recalibrate, float? gflops, float? bandwidthGbs, Backend backend)
    {
        if (gflops is not null || bandwidthGbs is not null)
        {
            if (gflops is not > 0 || bandwidthGbs is not > 0)
            {
                throw new CliException("give both --peak-gflops and --bandwidth-gbs, as positive numbers.");
            }

            return new MachinePeaks(gflops.Value * 1e9, bandwidthGbs.Value * 1e9);
        }

        if (backend.IsGpu && !backend.Name.StartsWith("CPU", StringComparison.OrdinalIgnoreCase))
        {
            return GpuPeaks(backend.Name);
        }

        var machine = Calibration.MachineKey();
        var lines = File.Exists(CachePath) ? File.ReadAllLines(CachePath) : [];
        if (!recalibrate && lines.Select(Parse).FirstOrDefault(entry => entry?.Machine == machine) is { } cached)
        {
            return cached.Peaks;
        }

        Console.Error.WriteLine($"bt: measuring the FMA peak and memory bandwidth of {machine} (cached for later runs)...");
        var peaks = Calibration.Measure();
        var line = string.Create(CultureInfo.InvariantCulture, $"{machine}\t{peaks.FlopsPerSecond}\t{peaks.BytesPerSecond}");
        Directory.CreateDirectory(Path.GetDirectoryName(CachePath)!);
        File.WriteAllLines(CachePath, lines.Where(other => Parse(other) is { } entry && entry.Machine != machine).Append(line));
        Console.Error.WriteLine($"bt: peak {peaks.FlopsPerSecond / 1e9:F1} GFLOP/s (fp32 FMA), bandwidth {peaks.BytesPerSecond / 1e9:F1} GB/s (triad); saved to {CachePath}");
        return peaks;
    }

    /// <summary>
    /// Datasheet peaks of the GPUs this project measures on (fp32 CUDA-core FMA, as the ILGPU kernels use no
    /// tensor cores; HBM bandwidth). Any other GPU needs --peak-gflops and --bandwidth-gbs.
    /// </summary>
    private static MachinePeaks GpuPeaks(string name) =>
        name.Contains("H200", StringComparison.OrdinalIgnoreCase) ? new MachinePeaks(67e12, 4.8e12)
        : name.Contains("H100 PCIe", StringComparison.OrdinalIgnoreCase) ? new MachinePeaks(51e12, 2.0e12)
        : name.Contains("H100", StringComparison.OrdinalIgnoreCase) ? new MachinePeaks(67e12, 3.35e12)
        : throw new CliException($"no known peaks for {name}: give --peak-gflops and --bandwidth-gbs (fp32 FMA GFLOP/s and memory GB/s).");

    /// <summary>
    /// A line of the cache: the machine (<see cref="Calibration.MachineKey"/>), tab, FLOP/s, tab, bytes/s.
    /// One line per machine, so that another CPU or thread count is measured rather than given this one's
    /// figures; a line that does not parse (the old format had no machine) is null, and dropped on saving.
    /// </summary>
    private static (string Machine, MachinePeaks Peaks)? Parse(string line)
    {
        var parts = line.Split('\t');
        return parts.Length == 3
            && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var flops) && flops > 0
            && double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var bytes) && bytes > 0
            ? (parts[0], new MachinePeaks(flops, bytes))
            : null;
    }
}
