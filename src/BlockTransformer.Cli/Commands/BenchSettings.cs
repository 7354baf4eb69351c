using System.Globalization;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>A prompt length and a number of generated tokens, as in the paper's Table 1.</summary>
internal sealed record BenchSetting(string Name, int PromptLength, int GenLength)
{
    public static readonly BenchSetting PrefillHeavy = new("prefill-heavy", 2048, 128);
    public static readonly BenchSetting DecodeHeavy = new("decode-heavy", 128, 2048);

    /// <summary>Same prompt and generation lengths (given as --prompt-len/--gen-len, a paper setting has another name).</summary>
    public bool SameLengths(BenchSetting other) => PromptLength == other.PromptLength && GenLength == other.GenLength;
}

/// <summary>
/// One measured (model, setting, batch) point: the median of <paramref name="Runs"/> timed runs (fewer than
/// --repeat when interrupted), and the slowest and fastest run's throughput, since on a shared machine the
/// runs of one point can differ by a third.
/// </summary>
internal sealed record BenchResult(
    string Model,
    string Device,
    BenchSetting Setting,
    int Batch,
    int Runs,
    double TokensPerSecond,
    double SlowestTokensPerSecond,
    double FastestTokensPerSecond,
    double PrefillSeconds,
    double DecodeSeconds,
    long MemoryPerSampleBytes,
    long KvCacheBytes,
    GenerationCost Cost)
{
    public double TotalSeconds => PrefillSeconds + DecodeSeconds;

    public double GflopsPerSecond => Cost.Total.Flops / TotalSeconds / 1e9;

    public double GigabytesPerSecond => Cost.Total.Bytes / TotalSeconds / 1e9;

    /// <summary>Lower-bound time over measured time: 1 means this machine's limit was reached.</summary>
    public double BoundFraction => Cost.Total.LowerBoundSeconds / TotalSeconds;
}

/// <summary>Throughput of the first model of a pair over the second's, for one setting, and the paper's for the same two (<see cref="PaperTable"/>) when it has one.</summary>
internal sealed record PairRatio(string First, string Second, BenchSetting Setting, double Ratio)
{
    public double? PaperRatio => PaperTable.Ratio(First, Second, Setting);
}

internal static class ByteSize
{
    /// <summary>Parses "8GiB", "512MiB", "2GB" or a plain byte count.</summary>
    public static long Parse(string text)
    {
        var units = new (string Suffix, double Factor)[] { ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1) };
        foreach (var (suffix, factor) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0)
            {
                return (long)(value * factor);
            }
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) && bytes > 0
            ? bytes
            : throw new CliException($"--memory-budget must be a size such as 8GiB or 512MiB, got '{text}'.");
    }
}
