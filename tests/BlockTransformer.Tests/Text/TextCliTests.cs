using System.Text.Json;
using BlockTransformer.Runtime;
using BlockTransformer.Text;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace BlockTransformer.Tests;

/// <summary>`bt tokenize`, `detokenize`, `generate --prompt`, `chat`, and the command-line faults a new user meets.</summary>
public class TextCliTests
{
    private static (int Code, string Output, string Error) Bt(params string[] args) => CliTests.Bt(args);

    [Fact]
    public void TokenizeGivesHuggingFacesIdsAndDetokenizeInvertsIt()
    {
        var path = TestTokenizer.Write();
        var file = TestModels.TempPath("text.txt");
        const string text = "In the beginning\r\n  God    created 😀 the heaven.\n";
        File.WriteAllText(file, text);
        using var reference = new HfTokenizer(path);
        var expected = reference.Encode(text).Select(id => (int)id).ToArray();

        var (code, output, error) = Bt("tokenize", "--tokenizer", path, "--file", file, "--format", "json");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(expected, json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));

        var plain = Bt("tokenize", $"--tokenizer={path}", "--text", text);
        Assert.Equal(string.Join(',', expected), plain.Output.Trim());

        var back = Bt("detokenize", "--tokenizer", path, "--ids", string.Join(',', expected));
        Assert.Equal(text + "\n", back.Output);
    }

    /// <summary>The official-checkpoint path on files the test writes: random weights in the official layout and a tokenizer.</summary>
    [Fact]
    public void GenerateFromTextPrintsTheDecodedContinuation()
    {
        var tokenizerPath = TestTokenizer.Write();
        var weights = TestModels.TempPath("block_main_b4_5.safetensors");
        Assert.Equal(0, Bt("init-weights", "--model", "block_main_b4_5", "--out", weights, "--dtype", "f32").Code);
        var (code, output, error) = Bt("generate", "--model", "block_main_b4_5", "--weights", weights, "--tokenizer", tokenizerPath,
            "--prompt", "In the beginning", "--prompt", "And God said", "--max-new-tokens", "12", "--format", "json");
        Assert.True(code == 0, error);
        var tokenizer = TextTokenizer.Load(tokenizerPath);
        using var json = JsonDocument.Parse(output);
        var items = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal(tokenizer.Encode("And God said"), items[1].GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        foreach (var item in items)
        {
            var generated = item.GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(tokenizer.Decode(generated), item.GetProperty("text").GetString());
            Assert.Equal(generated.Length == 12 ? "length" : "eos", item.GetProperty("finish_reason").GetString());
        }

        // One prompt in text format streams the same text to stdout.
        var single = Bt("generate", "--model", "block_main_b4_5", "--weights", weights, "--tokenizer", tokenizerPath, "--prompt", "In the beginning", "--max-new-tokens", "12");
        Assert.Equal(items[0].GetProperty("text").GetString() + "\n", single.Output);
    }

    [Fact]
    public void TokenizerTrainWritesAFileThatTokenizes()
    {
        var corpus = TestModels.TempPath("corpus.txt");
        File.WriteAllText(corpus, string.Concat(Enumerable.Repeat(TestTokenizer.Corpus + "\n", 20)));
        var output = Path.Combine(Path.GetDirectoryName(corpus)!, "trained.json");
        var (code, _, error) = Bt("tokenizer-train", "--corpus", corpus, "--vocab", "300", "--out", output);
        Assert.True(code == 0, error);
        Assert.Contains("300 tokens", error);
        Assert.Equal(300, TextTokenizer.Load(output).VocabularySize);
        Assert.False(File.Exists(output + ".tmp"));

        var empty = TestModels.TempPath("empty.txt");
        File.WriteAllText(empty, string.Empty);
        Assert.Contains("is empty", Bt("tokenizer-train", "--corpus", empty, "--out", output).Error);
        Assert.Contains("from 257", Bt("tokenizer-train", "--corpus", corpus, "--vocab", "100", "--out", output).Error);
        var binary = TestModels.TempPath("binary.txt");
        File.WriteAllBytes(binary, [0xFF, 0xFE, 0x00, 0xC3]);
        Assert.Contains("is not UTF-8 text", Bt("tokenizer-train", "--corpus", binary, "--out", output).Error);
    }

    [Fact]
    public void EvalScoresEveryTokenButTheFirstOfAVanillaWindow()
    {
        var tokenizerPath = TestTokenizer.Write();
        var file = TestModels.TempPath("held-out.txt");
        File.WriteAllText(file, TestTokenizer.Corpus);
        var (code, output, error) = Bt("eval", "--model", "vanilla_31", "--tokenizer", tokenizerPath, "--file", file, "--format", "json");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        var ids = TextTokenizer.Load(tokenizerPath).Encode(TestTokenizer.Corpus);
        Assert.True(ids.Length < 2048);
        Assert.Equal(ids.Length - 1, root.GetProperty("tokens").GetInt32()); // one window; token 0 is not predicted
        Assert.Equal(2048, root.GetProperty("window").GetInt32());
        var loss = root.GetProperty("loss").GetDouble();
        Assert.Equal(Math.Exp(loss), root.GetProperty("perplexity").GetDouble(), 1e-9 * Math.Exp(loss));
        var bytes = ids.Skip(1).Sum(id => TextTokenizer.Load(tokenizerPath).TokenBytes(id).Length);
        Assert.Equal(loss * (ids.Length - 1) / Math.Log(2) / bytes, root.GetProperty("bits_per_byte").GetDouble(), 1e-9);

        Assert.Contains("not a multiple of block_main_b4_5's block length 4", Bt("eval", "--model", "block_main_b4_5", "--tokenizer", tokenizerPath, "--file", file, "--window", "10").Error);
        Assert.Contains("--window must be an integer from 8 to 4096", Bt("eval", "--model", "block_main_b4_5", "--tokenizer", tokenizerPath, "--file", file, "--window", "8192").Error);
        var empty = TestModels.TempPath("empty.txt");
        File.WriteAllText(empty, "a");
        Assert.Contains("nothing to score", Bt("eval", "--model", "block_main_b4_5", "--tokenizer", tokenizerPath, "--file", empty).Error);
    }

    [Fact]
    public void ChatReadsLinesAndAnswers()
    {
        var tokenizerPath = TestTokenizer.Write();
        var input = TestModels.TempPath("input.txt");
        File.WriteAllText(input, "Who made the light?\n\n");
        var (code, output, error) = TestProcess.Run("bash", ["-c", $"dotnet '{Path.Combine(AppContext.BaseDirectory, "bt.dll")}' chat --model block_main_b4_5 --tokenizer '{tokenizerPath}' --max-new-tokens 8 < '{input}'"]);
        Assert.True(code == 0, error);
        Assert.Contains("chatting with block_main_b4_5", error);
        Assert.EndsWith("\n", output); // the answer, ended when the empty line ends the chat
    }

    public static TheoryData<string[], string> Faults => new()
    {
        { ["generate", "--bogus", "--prompt-ids", "1", "--model", "block_main_b4_5"], "Unrecognized command or argument '--bogus'" },
        { ["list", "extra"], "Unrecognized command or argument 'extra'" },
        { ["generate", "--model", "block_main_b4", "--prompt-ids", "1"], "did you mean 'block_main_b4_5'?" },
        { ["generate", "--model", "block_main_b4_5", "--prompt-ids", "1", "--top-k", "0"], "--top-k must be an integer from 1 to 50304" },
        { ["generate", "--model", "block_main_b4_5", "--prompt-ids", "1", "--top-k", "50305"], "--top-k must be an integer from 1 to 50304" },
        { ["generate", "--model", "--prompt-ids", "1"], "--model needs a value, but the next argument is the option --prompt-ids" },
        { ["generate", "--model", "block_main_b4_5", "--prompt", "x"], "--prompt is text, which needs --tokenizer FILE" },
        { ["generate", "--model", "block_main_b4_5", "--weights", "/tmp", "--prompt-ids", "1"], "--weights /tmp is a directory, not a file" },
        { ["generate", "--model", "block_main_b4_5", "--prompt-ids", "1", "--max-new-tokens", "2147483647"], "block decoder has max_context 1024" },
        { ["detokenize", "--tokenizer", "TOKENIZER", "--ids", "1,99999"], "--ids: token id 99999, outside the vocabulary" },
        { ["generate", "--model", "vanilla_31", "--tokenizer", "TOKENIZER", "--prompt", ""], "prompt 1 is empty after tokenization" },
        { ["generate", "--model", "vanilla_31", "--tokenizer", "TOKENIZER", "--prompt", "PROMPT4000", "--max-new-tokens", "200"], "does not fit vanilla_31's context" },
        { ["tokenize", "--tokenizer", "NOTJSON", "--text", "a"], "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public void FaultsAreOneClearLineAndExitCodeOne(string[] args, string expected)
    {
        var notJson = TestModels.TempPath("bad.json");
        File.WriteAllText(notJson, "{ nope");
        var tokenizer = TestTokenizer.Write();
        var resolved = args.Select(a => a switch
        {
            "TOKENIZER" => tokenizer,
            "NOTJSON" => notJson,
            "PROMPT4000" => string.Concat(Enumerable.Repeat("x 7 ", 2000)),
            _ => a,
        }).ToArray();
        var (code, output, error) = Bt(resolved);
        Assert.Equal(1, code);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("   at ", error); // no stack trace
        Assert.Equal(string.Empty, output);
    }

    [Theory]
    [InlineData("generate")]
    [InlineData("bench")]
    [InlineData("tokenize")]
    [InlineData("chat")]
    public void EveryCommandHasHelpWithItsOptions(string command)
    {
        var (code, output, _) = Bt(command, "--help");
        Assert.Equal(0, code);
        Assert.Contains($"bt {command} [options]", output);
        Assert.Contains("--help", output);
        Assert.Contains(command == "tokenize" ? "--tokenizer <FILE>" : "--model <NAME>", output);
    }

    [Fact]
    public void VersionAndFlagEqualsValueWork()
    {
        Assert.StartsWith("0.1.0", Bt("--version").Output);
        var (code, output, error) = Bt("generate", "--model=block_main_b4_5", "--prompt-ids=1,2,3", "--max-new-tokens=4", "--format=json");
        Assert.True(code == 0, error);
        Assert.Equal(4, JsonDocument.Parse(output).RootElement[0].GetProperty("generated_ids").GetArrayLength());
    }

    [Fact]
    public void NonFiniteWeightsAreWarnedAboutAndNonFiniteLogitsAreOneError()
    {
        var weights = TestModels.TempPath("nan.safetensors");
        Assert.Equal(0, Bt("init-weights", "--model", "vanilla_31", "--dtype", "f32", "--out", weights).Code);
        PutNaN(weights, "embed_out.weight", element: 12345);
        var (code, output, error) = Bt("generate", "--model", "vanilla_31", "--weights", weights, "--prompt-ids", "1,2", "--format", "json", "--top-logits", "2", "--max-new-tokens", "2");
        Assert.Equal(1, code);
        Assert.Contains("warning:", error);
        Assert.Contains("tensor 'embed_out.weight' has 1 NaN or infinite value", error);
        Assert.Contains("logits are not finite", error);
        Assert.Equal(string.Empty, output);
    }

    /// <summary>Overwrites one f32 element of a tensor in place, found through the file's own header.</summary>
    private static void PutNaN(string path, string tensor, long element)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        var length = new byte[8];
        file.ReadExactly(length);
        var header = new byte[BitConverter.ToInt64(length)];
        file.ReadExactly(header);
        using var json = JsonDocument.Parse(header);
        var start = json.RootElement.GetProperty(tensor).GetProperty("data_offsets")[0].GetInt64();
        file.Position = 8 + header.Length + start + (element * 4);
        file.Write(BitConverter.GetBytes(float.NaN));
    }

    /// <summary>64 prompts of 4095 tokens need 3 GB of KV cache; under a 1 GiB memory limit the request is refused before allocating.</summary>
    [Fact]
    public void ARequestThatCannotFitIsRefusedBeforeAllocating()
    {
        var prompt = string.Join(',', Enumerable.Range(1, 4095));
        string[] args = [Path.Combine(AppContext.BaseDirectory, "bt.dll"), "generate", "--model", "vanilla_31", "--max-new-tokens", "1", .. Enumerable.Range(0, 64).SelectMany(_ => new[] { "--prompt-ids", prompt })];
        var (code, output, error) = TestProcess.Run("dotnet", args, environment: new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x40000000" });
        Assert.Equal(1, code);
        Assert.Contains("this request needs about 3.", error);
        Assert.Contains("more than the 1.00 GiB of memory here", error);
        Assert.DoesNotContain("seeded random weights", error); // refused before the weights were built
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void WeightsOfAnotherModelListAtMostTwentyProblems()
    {
        var weights = TestModels.TempPath("b4_5.safetensors");
        Assert.Equal(0, Bt("init-weights", "--model", "block_main_b4_5", "--out", weights).Code);
        var (code, _, error) = Bt("generate", "--model", "vanilla_70", "--weights", weights, "--prompt-ids", "1");
        Assert.Equal(1, code);
        Assert.Contains("… and ", error);
        Assert.True(error.Split('\n').Count(l => l.StartsWith("  ", StringComparison.Ordinal)) <= 21, error);
    }
}
