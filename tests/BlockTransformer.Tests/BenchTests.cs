using System.Text.Json;
using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>`bt bench` output and the cost model behind its bound column.</summary>
public class BenchTests
{
    [Fact]
    public void BenchPairMeasuresEveryPointAndReportsTheRatioOfBestThroughputs()
    {
        var (code, output, error) = CliTests.Bt("bench", "--pair", "block_main_b4_5:vanilla_31", "--prompt-len", "8", "--gen-len", "8",
            "--batch", "1,2", "--repeat", "1", "--format", "json", "--peak-gflops", "100", "--bandwidth-gbs", "30");
        Assert.True(code == 0, error);
        // Progress (stderr is not a terminal here): one line per generate call, numbered against the total
        // counted up front: 2 models × (warm-up + memory at batch 1 and 2 + 2 batches × 1 repeat).
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"run {i}/10"), error.Split('\n').Where(l => l.StartsWith("run ", StringComparison.Ordinal)).Select(l => l[..l.IndexOf(':')]));
        Assert.Contains("\"setting\": \"8->8\"", output); // not HTML-escaped ("8-\u003E8"): people grep this
        using var json = JsonDocument.Parse(output);
        var items = json.RootElement.EnumerateArray().ToList();
        var results = items.Where(i => i.TryGetProperty("model", out _)).ToList();
        Assert.Equal(4, results.Count);
        foreach (var r in results)
        {
            Assert.Equal(8, r.GetProperty("prompt_len").GetInt32());
            Assert.Equal(8, r.GetProperty("gen_len").GetInt32());
            var seconds = r.GetProperty("prefill_seconds").GetDouble() + r.GetProperty("decode_seconds").GetDouble();
            var expected = r.GetProperty("batch").GetInt32() * 8 / seconds;
            Assert.Equal(expected, r.GetProperty("tokens_per_second").GetDouble(), expected * 1e-9);
            Assert.True(r.GetProperty("memory_per_sample_bytes").GetInt64() > 0);
            Assert.True(r.GetProperty("bound_fraction").GetDouble() > 0);
            Assert.Equal(1, r.GetProperty("runs").GetInt32());
            Assert.Equal(expected, r.GetProperty("tokens_per_second_min").GetDouble(), expected * 1e-9); // one run: it is also the slowest and fastest
            Assert.Equal(expected, r.GetProperty("tokens_per_second_max").GetDouble(), expected * 1e-9);
            Assert.Equal(100, r.GetProperty("peak_gflops").GetDouble());
            Assert.Equal(30, r.GetProperty("bandwidth_gbs").GetDouble());
        }

        double Best(string model) => results.Where(r => r.GetProperty("model").GetString() == model).Max(r => r.GetProperty("tokens_per_second").GetDouble());
        var pair = Assert.Single(items, i => i.TryGetProperty("pair", out _));
        Assert.Equal("block_main_b4_5:vanilla_31", pair.GetProperty("pair").GetString());
        Assert.Equal(Best("block_main_b4_5") / Best("vanilla_31"), pair.GetProperty("ratio").GetDouble(), 1e-9);
        Assert.Equal(JsonValueKind.Null, pair.GetProperty("paper_ratio").ValueKind); // 8 -> 8 is not one of the paper's settings
    }

    [Fact]
    public void CsvHasOneRowPerPointWithTheMedianBetweenTheSlowestAndFastestRun()
    {
        var (code, output, error) = CliTests.Bt("bench", "--model", "block_main_b4_5", "--prompt-len", "4", "--gen-len", "8",
            "--batch", "1,2", "--repeat", "3", "--format", "csv", "--peak-gflops", "100", "--bandwidth-gbs", "30");
        Assert.True(code == 0, error);
        var lines = output.Trim().Split('\n');
        var header = lines[0].Split(',');
        Assert.Equal(3, lines.Length);
        foreach (var (line, batch) in lines.Skip(1).Zip([1, 2]))
        {
            var row = header.Zip(line.Split(',')).ToDictionary(c => c.First, c => c.Second);
            double Number(string column) => double.Parse(row[column], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal("block_main_b4_5", row["model"]);
            Assert.Equal("4->8", row["setting"]);
            Assert.Equal(batch, Number("batch"));
            Assert.Equal(3, Number("runs"));
            Assert.InRange(Number("tokens_per_second"), Number("tokens_per_second_min"), Number("tokens_per_second_max"));
            Assert.True(Number("tokens_per_second_min") > 0);
        }
    }

    [Fact]
    public void TableShowsEachPointWithTheRangeOfItsRuns()
    {
        var (code, output, error) = CliTests.Bt("bench", "--model", "block_main_b4_5", "--prompt-len", "4", "--gen-len", "8",
            "--batch", "1", "--repeat", "2", "--peak-gflops", "100", "--bandwidth-gbs", "30");
        Assert.True(code == 0, error);
        var lines = output.Trim().Split('\n');
        Assert.StartsWith("device: cpu; peaks 100 GFLOP/s fp32, 30.0 GB/s", lines[0]);
        Assert.Equal(["model", "setting", "batch", "runs", "tok/s", "range", "prefill", "s", "decode", "s", "MB/sample", "KV", "MB", "GFLOP/s", "GB/s", "bound"],
            lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var cells = lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["block_main_b4_5", "4->8", "1", "2"], cells[..4]);
        var median = double.Parse(cells[4], System.Globalization.CultureInfo.InvariantCulture);
        var range = cells[5].Split('–').Select(c => double.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, range.Length);
        Assert.InRange(median, range[0], range[1]);
        Assert.EndsWith("%", cells[^1]);
    }

    [Theory]
    [InlineData("INT", 130)] // Ctrl+C
    [InlineData("TERM", 143)] // timeout(1), job schedulers
    public void InterruptedBenchPrintsWhatFinishedRunsMeasured(string signal, int exitCode)
    {
        // Far more repeats than can run; the signal once the second timed run has started (after the
        // warm-up, the two memory runs and one timed run).
        var (code, output, error) = TestProcess.RunAndInterrupt(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "bt.dll"), "bench", "--model", "block_main_b4_5", "--prompt-len", "8", "--gen-len", "64",
                "--batch", "1", "--repeat", "100000", "--format", "json", "--peak-gflops", "100", "--bandwidth-gbs", "30"],
            interruptAt: line => line.StartsWith("run 5/", StringComparison.Ordinal),
            signal: signal);
        Assert.True(code == exitCode, $"exit code {code}: {error}");
        Assert.Contains("bench interrupted: the results are from the runs that finished", error);
        using var json = JsonDocument.Parse(output);
        var result = Assert.Single(json.RootElement.EnumerateArray());
        Assert.Equal(1, result.GetProperty("batch").GetInt32());
        Assert.True(result.GetProperty("tokens_per_second").GetDouble() > 0);
        Assert.True(result.GetProperty("memory_per_sample_bytes").GetInt64() > 0);
        Assert.InRange(result.GetProperty("runs").GetInt32(), 1, 99_999); // the median of the repeats that finished
        var median = result.GetProperty("tokens_per_second").GetDouble();
        Assert.InRange(median, result.GetProperty("tokens_per_second_min").GetDouble(), result.GetProperty("tokens_per_second_max").GetDouble());
    }

    /// <summary>
    /// The cost model's peaks are cached per CPU and thread count: figures cached for another machine are
    /// not used (this one is measured and added), and this machine's are then reused.
    /// </summary>
    [Fact]
    public void CalibrationIsCachedPerMachineAndThreadCount()
    {
        var cacheHome = Path.GetDirectoryName(TestModels.TempPath("unused"))!;
        var file = Path.Combine(cacheHome, "blocktransformer", "machine-peaks.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        const string otherMachine = "GenuineIntel family 6 model 143 (a CPU that is not this one), AVX-512, 1 thread\t1e18\t1e16";
        File.WriteAllText(file, otherMachine + "\n");
        var environment = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = cacheHome, ["BT_THREADS"] = "1" };
        string[] bench = [Path.Combine(AppContext.BaseDirectory, "bt.dll"), "bench", "--model", "block_main_b4_5", "--prompt-len", "4", "--gen-len", "4", "--batch", "1", "--repeat", "1", "--format", "json"];

        var first = TestProcess.Run("dotnet", bench, environment: environment);
        Assert.True(first.Code == 0, first.Error);
        Assert.Contains("bt: measuring the FMA peak and memory bandwidth of ", first.Error);
        var lines = File.ReadAllLines(file);
        Assert.Equal(2, lines.Length);
        Assert.Equal(otherMachine, lines[0]);
        Assert.Contains(", 1 thread\t", lines[1]);
        var bound = JsonDocument.Parse(first.Output).RootElement[0].GetProperty("bound_fraction").GetDouble();
        Assert.True(bound > 1e-2, $"bound {bound}: the other machine's figures were used"); // with 1e18 FLOP/s and 1e16 B/s it would be ~1e-6

        var second = TestProcess.Run("dotnet", bench, environment: environment);
        Assert.True(second.Code == 0, second.Error);
        Assert.DoesNotContain("measuring", second.Error);
        Assert.Equal(lines, File.ReadAllLines(file));
    }

    [Fact]
    public void PairAtAPaperSettingReportsThePapersRatioForTheSameModels()
    {
        var (code, output, error) = CliTests.Bt("bench", "--pair", "block_main_b4_5_kv_bf16:vanilla_31_bf16", "--setting", "prefill-heavy",
            "--batch", "1", "--repeat", "1", "--format", "json", "--peak-gflops", "100", "--bandwidth-gbs", "30");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var pair = Assert.Single(json.RootElement.EnumerateArray(), i => i.TryGetProperty("pair", out _));
        // Table 1 (brief §6.1), prefill-heavy: block 33M 272.3K tok/s, vanilla 31M 10.8K tok/s; the _kv_bf16 and _bf16
        // variants are the same models (bf16 cache, bf16 weights).
        Assert.Equal(272.3 / 10.8, pair.GetProperty("paper_ratio").GetDouble(), 1e-9);
    }

    [Fact]
    public void MemoryBudgetPicksABatchWhoseMeasuredMemoryFits()
    {
        const long budget = 200L << 20;
        var result = SingleResult("--model", "block_main_b4_5", "--prompt-len", "8", "--gen-len", "4", "--memory-budget", "200MiB");
        var batch = result.GetProperty("batch").GetInt32();
        var perSample = result.GetProperty("memory_per_sample_bytes").GetInt64();
        // f32 weights of block_main_b4_5 (33.8M parameters) plus batch × per-sample memory stay within the budget.
        Assert.True(batch > 1, $"batch {batch}");
        Assert.True((BlockTransformer.Models.BlockMainB4_5Model.TotalParameters * 4) + (batch * perSample) <= budget, $"batch {batch} × {perSample} B");
    }

    /// <summary>
    /// At a 2048-token prompt block_main_b4_5's KV cache is 3.2 MB per sample: under the 4 MiB from which a
    /// buffer takes whole huge pages at batch 1, over it at batch 2. Memory per sample must still be the
    /// cache plus a little activation memory, not the 2 MiB of page rounding between the two batches.
    /// </summary>
    [Fact]
    public void MemoryPerSampleIsNotHugePageRounding()
    {
        var result = SingleResult("--model", "block_main_b4_5", "--prompt-len", "2048", "--gen-len", "8", "--batch", "1");
        var cache = result.GetProperty("kv_cache_bytes").GetInt64();
        Assert.InRange(result.GetProperty("memory_per_sample_bytes").GetInt64(), cache, cache + (1 << 20));
    }

    /// <summary>The one result of `bt bench ARGS --repeat 1 --format json` with peaks given (no calibration run).</summary>
    private static JsonElement SingleResult(params string[] args)
    {
        var (code, output, error) = CliTests.Bt(["bench", .. args, "--repeat", "1", "--format", "json", "--peak-gflops", "100", "--bandwidth-gbs", "30"]);
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        return Assert.Single(json.RootElement.EnumerateArray()).Clone();
    }

    [Theory]
    [InlineData("--batch must be positive integers", "--model", "vanilla_31", "--batch", "0")]
    [InlineData("either --batch or --memory-budget", "--model", "vanilla_31", "--batch", "2", "--memory-budget", "1GiB")]
    [InlineData("--memory-budget must be a size", "--model", "vanilla_31", "--memory-budget", "lots")]
    [InlineData("--pair must be FIRST:SECOND", "--pair", "vanilla_31")]
    [InlineData("name what to measure", "--setting", "decode-heavy", "--peak-gflops", "1", "--bandwidth-gbs", "1")]
    [InlineData("KV cache for 2000000000 sequences of up to 8 + 4 tokens", "--model", "block_main_b4_5", "--prompt-len", "8", "--gen-len", "4", "--batch", "1,2000000000", "--repeat", "1", "--peak-gflops", "1", "--bandwidth-gbs", "1")]
    [InlineData("not even batch 1 fits in the memory budget of 1.0 KiB: block_main_b4_5 at batch 1 needs about", "--model", "block_main_b4_5", "--prompt-len", "8", "--gen-len", "4", "--memory-budget", "1KiB", "--repeat", "1", "--peak-gflops", "1", "--bandwidth-gbs", "1")]
    [InlineData("5000->10 (5000 prompt + 10 generated tokens): prompt + max new tokens need 5009 positions, but vanilla_31 has max_context 4096.", "--model", "vanilla_31", "--prompt-len", "5000", "--gen-len", "10")]
    [InlineData("memory here: give a smaller --batch or --memory-budget", "--model", "block_main_b4_5", "--prompt-len", "8", "--gen-len", "4", "--memory-budget", "100000GiB", "--repeat", "1", "--peak-gflops", "1", "--bandwidth-gbs", "1")]
    public void BadBenchFlagsAreOneLineErrors(string expected, params string[] args)
    {
        var (code, _, error) = CliTests.Bt(["bench", .. args]);
        Assert.Equal(1, code);
        Assert.Contains(expected, error);
    }

    /// <summary>
    /// Decode of a vanilla model reads, per step, every linear weight and the LM head once, plus the K/V of
    /// every attended position: prompt 5, 4 new tokens, batch 2 → 3 decode steps at contexts 6, 7, 8.
    /// </summary>
    [Fact]
    public void CostModelFollowsTheVanillaCallSequence()
    {
        var info = TestModels.Find("tiny_vanilla").Info; // 2 layers, D 32, FFN 128, vocab 101
        var cost = CostModel.Generation(info, promptLength: 5, newTokens: 4, batch: 2, new MachinePeaks(1e9, 1e9));
        const long linear = 2 * ((3 * 32 * 32) + (32 * 32) + (2 * 32 * 128));
        const long head = 101 * 32;
        Assert.Equal(3.0 * (linear + head) * 4, cost.Decode.WeightBytes);
        Assert.Equal(2.0 * 2 * (6 + 7 + 8) * 32 * 2 * 4, cost.Decode.KvBytes); // layers × sequences × positions × KvDim × (K, V) × 4 B
        // Prefill, per prompt: 2 FLOPs per weight per row, 4·D per attended position per layer (1+…+5 = 15), one LM-head row.
        Assert.Equal(2 * ((2.0 * 5 * linear) + (4.0 * 2 * 15 * 32) + (2.0 * head)), cost.Prefill.Flops);
        // A prefill's queries share the cached positions: each of the 5 is read once per layer and prompt.
        Assert.Equal(2.0 * 2 * 5 * 32 * 2 * 4, cost.Prefill.KvBytes);
    }
}
