using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>
/// `bt eval`: the held-out loss of a text. The file is tokenized as one string (no BOS) and cut into consecutive
/// windows; each window is scored teacher-forced (<see cref="Scorer"/>) from window position --score-from on.
/// </summary>
internal static class EvalCommand
{
    public static int Run(Arguments arguments)
    {
        var descriptor = ModelCatalog.Find(arguments.Value("--model"));
        var info = descriptor.Info;
        var weights = arguments.ExistingFile("--weights");
        var seed = arguments.ULong("--weights-seed", 0);
        var tokenizer = Inputs.RequiredTokenizer(arguments, info);
        var file = arguments.ExistingFile("--file") ?? throw new CliException("--file FILE (the UTF-8 text to score) is required.");
        var format = arguments.Value("--format") ?? "text";
        if (format is not ("text" or "json"))
        {
            throw new CliException($"--format must be text or json, got '{format}'.");
        }

        var lb = info.BlockLength;
        var context = info.Kind == ModelKind.Block ? info.BlockDecoder!.MaxContext * lb : info.Decoder.MaxContext;
        var window = arguments.Int("--window", Math.Min(2048, context) / lb * lb, min: 2 * lb, max: context);
        if (window % lb != 0)
        {
            throw new CliException($"--window {window} is not a multiple of {info.Name}'s block length {lb}.");
        }

        var scoreFrom = arguments.Int("--score-from", info.Kind == ModelKind.Block ? lb : 1, min: 1, max: window - 1);
        var text = Inputs.ReadUtf8(file, "--file");
        var tokens = tokenizer.Encode(text);
        var windows = Windows(tokens.Length, window, lb);
        if (windows.Count == 0)
        {
            throw new CliException($"--file {file} is {tokens.Length} tokens, fewer than two blocks ({2 * lb}): nothing to score.");
        }

        using var backend = Backend.Open(null);
        using var model = Inputs.Model(backend, descriptor, weights, seed);
        var scorer = new Scorer(model);
        var nats = 0.0;
        var scored = 0L;
        var bytes = 0L;
        var terminal = !Console.IsErrorRedirected;
        for (var w = 0; w < windows.Count; w++)
        {
            var (start, length) = windows[w];
            var score = scorer.ScoreWindow(tokens.AsSpan(start, length), scoreFrom);
            nats += score.Nats;
            scored += score.ScoredTokens.Count;
            bytes += score.ScoredTokens.Sum(id => (long)tokenizer.TokenBytes(id).Length);
            if (terminal)
            {
                Console.Error.Write($"\rbt: window {w + 1}/{windows.Count}, loss {nats / Math.Max(1, scored):F4}");
            }
        }

        if (terminal)
        {
            Console.Error.WriteLine();
        }

        var loss = nats / scored;
        var bitsPerByte = nats / Math.Log(2) / Math.Max(1, bytes);
        if (format == "json")
        {
            using var json = JsonOutput.Create(indented: false);
            json.WriteStartObject();
            json.WriteNumber("tokens", scored);
            json.WriteNumber("window", window);
            json.WriteNumber("loss", loss);
            json.WriteNumber("perplexity", Math.Exp(loss));
            json.WriteNumber("bits_per_byte", bitsPerByte);
            json.WriteEndObject();
            json.Flush();
            Console.WriteLine();
        }
        else
        {
            Console.WriteLine($"{info.Name}: loss {loss:F4} nats/token, perplexity {Math.Exp(loss):F2}, {bitsPerByte:F4} bits/byte over {scored} tokens ({windows.Count} windows of up to {window}, scored from position {scoreFrom})");
        }

        return 0;
    }

    /// <summary>Consecutive windows; the last one cut down to whole blocks and dropped when under two blocks.</summary>
    private static List<(int Start, int Length)> Windows(int tokens, int window, int lb)
    {
        var windows = new List<(int, int)>();
        for (var start = 0; start < tokens; start += window)
        {
            var length = Math.Min(window, tokens - start) / lb * lb;
            if (length >= 2 * lb)
            {
                windows.Add((start, length));
            }
        }

        return windows;
    }
}
