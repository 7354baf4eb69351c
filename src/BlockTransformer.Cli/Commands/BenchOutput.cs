using System.Globalization;
using System.Text.Json;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>Writes bench results as an aligned table, a JSON array or CSV.</summary>
internal static class BenchOutput
{
    private static readonly string[] Columns =
    [
        "model", "device", "setting", "prompt_len", "gen_len", "batch", "tokens_per_second", "tokens_per_second_min", "tokens_per_second_max", "prefill_seconds", "decode_seconds",
        "memory_per_sample_bytes", "kv_cache_bytes", "gflops_per_second", "gbytes_per_second", "bound_fraction",
        "runs", "peak_gflops", "bandwidth_gbs",
    ];

    public static void Write(string format, List<BenchResult> results, List<PairRatio> pairs, MachinePeaks peaks)
    {
        switch (format)
        {
            case "json":
                WriteJson(results, pairs, peaks);
                break;
            case "csv":
                Console.WriteLine(string.Join(',', Columns));
                results.ForEach(r => Console.WriteLine(string.Join(',', Row(r, peaks))));
                if (pairs.Count > 0)
                {
                    Console.WriteLine("pair,prompt_len,gen_len,ratio,paper_ratio");
                    pairs.ForEach(p => Console.WriteLine(string.Join(',', $"{p.First}:{p.Second}", I(p.Setting.PromptLength), I(p.Setting.GenLength), F(p.Ratio, "F3"), p.PaperRatio is { } paper ? F(paper, "F3") : string.Empty)));
                }

                break;
            default:
                WriteTable(results, pairs, peaks);
                break;
        }
    }

    private static string[] Row(BenchResult r, MachinePeaks peaks) =>
    [
        r.Model, r.Device, r.Setting.Name, I(r.Setting.PromptLength), I(r.Setting.GenLength), I(r.Batch), F(r.TokensPerSecond, "F1"),
        F(r.SlowestTokensPerSecond, "F1"), F(r.FastestTokensPerSecond, "F1"), F(r.PrefillSeconds, "F3"), F(r.DecodeSeconds, "F3"), I(r.MemoryPerSampleBytes), I(r.KvCacheBytes),
        F(r.GflopsPerSecond, "F1"), F(r.GigabytesPerSecond, "F1"), F(r.BoundFraction, "F3"),
        I(r.Runs), F(peaks.FlopsPerSecond / 1e9, "F1"), F(peaks.BytesPerSecond / 1e9, "F2"),
    ];

    private static void WriteTable(List<BenchResult> results, List<PairRatio> pairs, MachinePeaks peaks)
    {
        Console.WriteLine($"device: {results.FirstOrDefault()?.Device}; peaks {peaks.FlopsPerSecond / 1e9:F0} GFLOP/s fp32, {peaks.BytesPerSecond / 1e9:F1} GB/s; bound = cost-model lower bound / measured time");
        var header = new[] { "model", "setting", "batch", "runs", "tok/s", "range", "prefill s", "decode s", "MB/sample", "KV MB", "GFLOP/s", "GB/s", "bound" };
        var rows = results.Select(r => new[]
        {
            r.Model, r.Setting.Name, I(r.Batch), I(r.Runs), F(r.TokensPerSecond, "F1"), $"{F(r.SlowestTokensPerSecond, "F1")}–{F(r.FastestTokensPerSecond, "F1")}", F(r.PrefillSeconds, "F3"), F(r.DecodeSeconds, "F3"),
            F(r.MemoryPerSampleBytes / 1e6, "F1"), F(r.KvCacheBytes / 1e6, "F1"), F(r.GflopsPerSecond, "F1"), F(r.GigabytesPerSecond, "F1"),
            F(r.BoundFraction * 100, "F0") + "%",
        }).Prepend(header).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            Console.WriteLine(string.Join("  ", row.Select((cell, c) => c < 2 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))));
        }

        foreach (var pair in pairs)
        {
            var paper = pair.PaperRatio is { } ratio ? $" (paper, same two models on one H100, Table 1: {F(ratio, "F1")}x)" : string.Empty;
            Console.WriteLine($"{pair.First} / {pair.Second}, {pair.Setting.Name}: {pair.Ratio:F2}x throughput{paper}");
        }
    }

    private static void WriteJson(List<BenchResult> results, List<PairRatio> pairs, MachinePeaks peaks)
    {
        using var json = JsonOutput.Create(indented: true);
        json.WriteStartArray();
        foreach (var r in results)
        {
            json.WriteStartObject();
            json.WriteString("model", r.Model);
            json.WriteString("device", r.Device);
            json.WriteString("setting", r.Setting.Name);
            json.WriteNumber("prompt_len", r.Setting.PromptLength);
            json.WriteNumber("gen_len", r.Setting.GenLength);
            json.WriteNumber("batch", r.Batch);
            json.WriteNumber("tokens_per_second", r.TokensPerSecond);
            json.WriteNumber("tokens_per_second_min", r.SlowestTokensPerSecond);
            json.WriteNumber("tokens_per_second_max", r.FastestTokensPerSecond);
            json.WriteNumber("prefill_seconds", r.PrefillSeconds);
            json.WriteNumber("decode_seconds", r.DecodeSeconds);
            json.WriteNumber("memory_per_sample_bytes", r.MemoryPerSampleBytes);
            json.WriteNumber("kv_cache_bytes", r.KvCacheBytes);
            json.WriteNumber("flops", r.Cost.Total.Flops);
            json.WriteNumber("bytes_read", r.Cost.Total.Bytes);
            json.WriteNumber("gflops_per_second", r.GflopsPerSecond);
            json.WriteNumber("gbytes_per_second", r.GigabytesPerSecond);
            json.WriteNumber("lower_bound_seconds", r.Cost.Total.LowerBoundSeconds);
            json.WriteNumber("bound_fraction", r.BoundFraction);
            json.WriteNumber("runs", r.Runs);
            json.WriteNumber("peak_gflops", peaks.FlopsPerSecond / 1e9);
            json.WriteNumber("bandwidth_gbs", peaks.BytesPerSecond / 1e9);
            json.WriteEndObject();
        }

        foreach (var p in pairs)
        {
            json.WriteStartObject();
            json.WriteString("pair", $"{p.First}:{p.Second}");
            json.WriteString("setting", p.Setting.Name);
            json.WriteNumber("prompt_len", p.Setting.PromptLength);
            json.WriteNumber("gen_len", p.Setting.GenLength);
            json.WriteNumber("ratio", p.Ratio);
            if (p.PaperRatio is { } paper)
            {
                json.WriteNumber("paper_ratio", paper);
            }
            else
            {
                json.WriteNull("paper_ratio");
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.Flush();
        Console.WriteLine();
    }

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
