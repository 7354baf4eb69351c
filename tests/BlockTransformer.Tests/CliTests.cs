using System.Text.Json;

namespace BlockTransformer.Tests;

/// <summary>The `bt` command, run as a separate process exactly as a user runs it.</summary>
public class CliTests
{
    /// <summary>Paper Table 1 (brief §6.1): total and non-embedding parameters in millions.</summary>
    public static TheoryData<string, double, double> PaperSizes => new()
    {
        { "block_main_b4_5", 33, 5 },
        { "block_main_b4_19", 77, 19 },
        { "block_main_b4_85", 170, 85 },
        { "block_main_b4_300", 420, 302 },
        { "block_main_b4_800", 1000, 805 },
        { "block_main_b4_1.2b", 1400, 1200 },
        { "vanilla_31", 31, 5 },
        { "vanilla_70", 70, 19 },
        { "vanilla_160", 160, 85 },
        { "vanilla_410", 410, 302 },
    };

    /// <summary>
    /// Counts must match the paper's within its rounding (half a unit of the last printed digit) or 3%,
    /// whichever is looser: the paper prints 33M for a model whose tensors hold 33.8M.
    /// </summary>
    [Theory]
    [MemberData(nameof(PaperSizes))]
    public void InfoParameterCountsMatchThePaper(string model, double totalMillions, double nonEmbeddingMillions)
    {
        var (code, output, _) = Bt("info", model, "--format", "json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        AssertNear(totalMillions, json.RootElement.GetProperty("total_parameters").GetInt64() / 1e6);
        AssertNear(nonEmbeddingMillions, json.RootElement.GetProperty("non_embedding_parameters").GetInt64() / 1e6);
        Assert.True(json.RootElement.GetProperty("kv_cache_bytes_per_token").GetDouble() > 0);
    }

    [Theory]
    [InlineData("block_main_b4_5", "f32", 4)]
    [InlineData("block_main_b4_5_kv_bf16", "bf16", 2)]
    public void BlockKvCachePerTokenIsTheBlockDecodersPerPositionOverBlockLength(string model, string dtype, int elementBytes)
    {
        using var json = JsonDocument.Parse(Bt("info", model, "--format", "json").Output);
        Assert.Equal(dtype, json.RootElement.GetProperty("kv_cache_dtype").GetString());
        // 3 layers × (K + V) × 256 dims × element bytes per block position, shared by L_B = 4 tokens.
        Assert.Equal(3 * 2 * 256 * elementBytes / 4.0, json.RootElement.GetProperty("kv_cache_bytes_per_token").GetDouble());
    }

    [Fact]
    public void GenerateJsonHasOneObjectPerPromptWithTopLogits()
    {
        var (code, output, error) = Bt("generate", "--model", "block_main_b4_5", "--prompt-ids", "1,2,3", "--prompt-ids", "7",
            "--max-new-tokens", "6", "--format", "json", "--top-logits", "3");
        Assert.True(code == 0, error);
        Assert.Contains("seeded random weights", error);
        using var json = JsonDocument.Parse(output);
        var items = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal([1, 2, 3], items[0].GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([7], items[1].GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        foreach (var item in items)
        {
            var generated = item.GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
            var top = item.GetProperty("top_logits").EnumerateArray().ToList();
            Assert.Equal(6, generated.Count);
            Assert.Equal(6, top.Count);
            for (var step = 0; step < 6; step++)
            {
                var pairs = top[step].EnumerateArray().Select(p => (Id: p[0].GetInt32(), Logit: p[1].GetDouble())).ToList();
                Assert.Equal(3, pairs.Count);
                Assert.Equal(generated[step], pairs[0].Id); // greedy picks the top logit
                Assert.True(pairs[0].Logit >= pairs[1].Logit && pairs[1].Logit >= pairs[2].Logit);
            }
        }
    }

    /// <summary>The paper model's generated ILGPU kernels on the CPU simulator: same tokens and top logits as the CPU.</summary>
    [Fact]
    public void GenerateOnTheGpuSimulatorMatchesTheCpu()
    {
        string[] args = ["generate", "--model", "vanilla_31", "--prompt-ids", "1,2,3", "--prompt-ids", "7", "--max-new-tokens", "3", "--format", "json", "--top-logits", "3"];
        var cpu = Bt(args);
        var gpu = Bt([.. args, "--device", "cpu-sim"]);
        Assert.True(gpu.Code == 0, gpu.Error);
        Assert.Contains("on CPUAccelerator", gpu.Error);
        using var expected = JsonDocument.Parse(cpu.Output);
        using var actual = JsonDocument.Parse(gpu.Output);
        foreach (var (e, a) in expected.RootElement.EnumerateArray().Zip(actual.RootElement.EnumerateArray()))
        {
            Assert.Equal(e.GetProperty("generated_ids").ToString(), a.GetProperty("generated_ids").ToString());
            var logits = (JsonElement item) => item.GetProperty("top_logits").EnumerateArray().SelectMany(step => step.EnumerateArray()).ToList();
            foreach (var (x, y) in logits(e).Zip(logits(a), (x, y) => (x, y)))
            {
                Assert.Equal(x[0].GetInt32(), y[0].GetInt32());
                Assert.True(Math.Abs(x[1].GetDouble() - y[1].GetDouble()) <= 1e-4 * Math.Max(1, Math.Abs(x[1].GetDouble())), $"{x} vs {y}");
            }
        }
    }

    [Fact]
    public void InitWeightsFileGivesTheSameTokensAsTheBuiltInSeededWeights()
    {
        var path = TestModels.TempPath("vanilla_31.safetensors");
        Assert.Equal(0, Bt("init-weights", "--model", "vanilla_31", "--seed", "5", "--out", path).Code);
        var fromFile = Bt("generate", "--model", "vanilla_31", "--weights", path, "--prompt-ids", "10,20,30", "--max-new-tokens", "5", "--format", "json");
        var builtIn = Bt("generate", "--model", "vanilla_31", "--weights-seed", "5", "--prompt-ids", "10,20,30", "--max-new-tokens", "5", "--format", "json");
        Assert.Equal(0, fromFile.Code);
        Assert.Equal(builtIn.Output, fromFile.Output);
        Assert.DoesNotContain("seeded random weights", fromFile.Error);
    }

    [Theory]
    [InlineData("unknown model 'nope'", "generate", "--model", "nope", "--prompt-ids", "1")]
    [InlineData("'x' is not a token id", "generate", "--model", "vanilla_31", "--prompt-ids", "1,x")]
    [InlineData("token id 50304, outside the vocabulary", "generate", "--model", "vanilla_31", "--prompt-ids", "1,50304")]
    [InlineData("is empty", "generate", "--model", "vanilla_31", "--prompt-ids", "")]
    [InlineData("a prompt is required", "generate", "--model", "vanilla_31")]
    [InlineData("no such file", "generate", "--model", "vanilla_31", "--weights", "/no/such.safetensors", "--prompt-ids", "1")]
    [InlineData("Unrecognized command or argument '--top-kk'", "generate", "--model", "vanilla_31", "--prompt-ids", "1", "--top-kk", "3")]
    [InlineData("--greedy cannot be combined", "generate", "--model", "vanilla_31", "--prompt-ids", "1", "--greedy", "--temperature", "0.7")]
    [InlineData("--max-new-tokens must be an integer", "generate", "--model", "vanilla_31", "--prompt-ids", "1", "--max-new-tokens", "-3")]
    [InlineData("Unrecognized command or argument 'frobnicate'", "frobnicate")]
    [InlineData("unknown device 'tpu'", "generate", "--model", "vanilla_31", "--prompt-ids", "1", "--device", "tpu")]
    [InlineData("top-p sampling (top-p 0.5) is not available on the GPU", "generate", "--model", "vanilla_31", "--prompt-ids", "1", "--device", "cpu-sim", "--top-p", "0.5")]
    [InlineData("sampling needs a top-k from 1 to 64", "generate", "--model", "vanilla_31", "--prompt-ids", "1", "--device", "cpu-sim", "--temperature", "0.8")]
    [InlineData("--out /no/such/dir/w.safetensors: cannot write the weights file", "init-weights", "--model", "vanilla_31", "--out", "/no/such/dir/w.safetensors")]
    public void BadInputPrintsOneClearLineAndFails(string expected, params string[] args)
    {
        var (code, output, error) = Bt(args);
        Assert.Equal(1, code);
        Assert.Empty(output);
        Assert.Contains(expected, error);
        Assert.StartsWith("bt: error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", error);
    }

    [Theory]
    [InlineData("bt [command] [options]", "--help")]
    [InlineData("--prompt-ids <IDS>", "generate", "--model", "vanilla_31", "--help")]
    [InlineData("--pair <A:B>", "bench", "-h")]
    public void HelpAnywherePrintsTheUsage(string expected, params string[] args)
    {
        var (code, output, error) = Bt(args);
        Assert.True(code == 0, error);
        Assert.Contains(expected, output);
    }

    [Fact]
    public void UnreadableWeightsFileIsAClearError()
    {
        var path = TestModels.TempPath("garbage.safetensors");
        File.WriteAllText(path, "this is not a safetensors file");
        var (code, _, error) = Bt("generate", "--model", "vanilla_31", "--weights", path, "--prompt-ids", "1");
        Assert.Equal(1, code);
        Assert.Contains("header length", error);
    }

    private static void AssertNear(double paper, double ours)
    {
        var digitsUnit = paper >= 1000 ? 100 : 1; // "1.0B"/"1.4B" are printed to 0.1B
        var allowed = Math.Max(digitsUnit / 2.0, 0.03 * paper);
        Assert.True(Math.Abs(paper - ours) <= allowed, $"paper {paper}M, ours {ours:F2}M (allowed ±{allowed:F2}M)");
    }

    [Fact]
    public void InterruptedGeneratePrintsWhatWasGenerated()
    {
        var (code, output, error) = TestProcess.RunAndInterrupt(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "bt.dll"), "generate", "--model", "block_main_b4_5", "--prompt-ids", "1,2,3", "--prompt-ids", "7",
                "--max-new-tokens", "4000", "--keep-going-after-eos", "--format", "json"],
            interruptAt: line => line.Contains("no --weights given", StringComparison.Ordinal),
            delay: TimeSpan.FromSeconds(3)); // random weights take about a second, then it generates
        Assert.True(code == 130, $"exit code {code}: {error}");
        using var json = JsonDocument.Parse(output);
        var counts = json.RootElement.EnumerateArray().Select(r => r.GetProperty("generated_ids").GetArrayLength()).ToList();
        Assert.Equal(2, counts.Count);
        Assert.True(counts[0] < 4000, $"{counts[0]} tokens: the interrupt did not stop it");
        Assert.InRange(counts[0] - counts[1], 0, 1); // sequence 0 is recorded first in each step
        Assert.Contains($"bt: {counts.Sum()} tokens in ", error);
        Assert.Contains("interrupted, the output is what was generated until then", error);
    }

    internal static (int Code, string Output, string Error) Bt(params string[] args) =>
        TestProcess.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "bt.dll"), .. args]);
}
