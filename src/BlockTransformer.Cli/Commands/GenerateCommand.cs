using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>`bt generate`: runs the Runtime's generation API on one or more prompts of token ids.</summary>
internal static class GenerateCommand
{
    private static readonly HashSet<string> Switches = ["--greedy", "--keep-going-after-eos"];

    public static int Run(string[] args)
    {
        var arguments = new Arguments(args, Switches);
        var descriptor = ModelCatalog.Find(arguments.Value("--model"));
        var weights = arguments.Value("--weights");
        var weightsSeed = arguments.ULong("--weights-seed", 0);
        var prompts = arguments.Values("--prompt-ids").Select((text, i) => ParseIds(text, i, descriptor.Info.VocabSize)).ToArray();
        if (prompts.Length == 0)
        {
            throw new CliException("--prompt-ids \"1,2,3\" is required (repeat it for a batch).");
        }

        var options = new GenerationOptions
        {
            MaxNewTokens = arguments.Int("--max-new-tokens", 16, min: 0),
            Sampling = Sampling(arguments),
            TokenPositions = (arguments.Value("--positions") ?? "training") switch
            {
                "training" => TokenPositions.Training,
                "reference" => TokenPositions.Reference,
                var other => throw new CliException($"--positions must be training or reference, got '{other}'."),
            },
            StopAtEos = !arguments.Has("--keep-going-after-eos"),
        };
        var format = arguments.Value("--format") ?? "text";
        if (format is not ("text" or "json"))
        {
            throw new CliException($"--format must be text or json, got '{format}'.");
        }

        var topLogits = arguments.Int("--top-logits", 0, min: 0);
        var device = arguments.Value("--device");
        arguments.RejectUnknown("generate");

        using var interrupt = new ConsoleInterrupt(); // Ctrl+C stops generating and prints what was generated
        using var backend = Backend.Open(device);
        backend.CheckSupported(options.Sampling);
        if (weights is null)
        {
            Console.Error.WriteLine($"bt: no --weights given: using seeded random weights (seed {weightsSeed}, {descriptor.DefaultDType}) for {descriptor.Info.Name}");
        }

        using var model = backend.Create(descriptor, weights, weightsSeed);
        var top = prompts.Select(_ => new List<(int Id, float Logit)[]>()).ToArray();
        var tokens = prompts.Select(_ => new List<int>()).ToArray();
        var streaming = format == "text" && prompts.Length == 1;
        var clock = Stopwatch.StartNew();
        GenerationResult[] results;
        try
        {
            results = backend.Generator(model, copyLogits: topLogits > 0).Generate(prompts, options, (sequence, token, logits) =>
            {
                tokens[sequence].Add(token);
                if (topLogits > 0)
                {
                    top[sequence].Add(TopK(logits, topLogits));
                }

                if (streaming)
                {
                    Console.Write(token.ToString(CultureInfo.InvariantCulture) + " ");
                }
            }, interrupt.Token);
        }
        catch (OperationCanceledException) when (interrupt.Requested)
        {
            // What the callback saw is what was generated; a sequence may already have ended on EOS.
            var eos = descriptor.Info.EosId;
            results = prompts.Select((prompt, i) => new GenerationResult(prompt, tokens[i], options.StopAtEos && tokens[i].Count > 0 && tokens[i][^1] == eos)).ToArray();
        }

        var seconds = clock.Elapsed.TotalSeconds;
        var generated = results.Sum(r => r.GeneratedIds.Count);

        if (format == "json")
        {
            WriteJson(results, topLogits > 0 ? top : null);
        }
        else if (streaming)
        {
            Console.WriteLine();
        }
        else
        {
            for (var i = 0; i < results.Length; i++)
            {
                Console.WriteLine($"[{i}] {string.Join(' ', results[i].GeneratedIds)}");
            }
        }

        Console.Error.WriteLine($"bt: {generated} tokens in {seconds:F3} s ({generated / Math.Max(seconds, 1e-9):F1} tokens/s, batch {prompts.Length}, prefill included, on {backend.Name}){(interrupt.Requested ? "; interrupted, the output is what was generated until then" : string.Empty)}");
        return interrupt.Requested ? interrupt.ExitCode : 0;
    }

    private static SamplingOptions Sampling(Arguments arguments)
    {
        var greedy = arguments.Has("--greedy");
        var temperature = arguments.Float("--temperature");
        var topK = arguments.Int("--top-k", 0, min: 0);
        var topP = arguments.Float("--top-p");
        var seed = arguments.ULong("--seed", 0);
        var sampling = temperature is not null || topK > 0 || topP is not null;
        if (greedy && sampling)
        {
            throw new CliException("--greedy cannot be combined with --temperature, --top-k or --top-p.");
        }

        var options = new SamplingOptions { Greedy = !sampling, Temperature = temperature ?? 1f, TopK = topK, TopP = topP ?? 1f, Seed = seed };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }

        return options;
    }

    /// <summary>Parses "1,2,3" and checks every id against the vocabulary before any weights are loaded.</summary>
    private static int[] ParseIds(string text, int index, int vocabSize)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.All(p => p.Length == 0))
        {
            throw new CliException($"--prompt-ids #{index + 1} is empty; give at least one token id, e.g. \"1,2,3\".");
        }

        return parts.Select(p => !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? throw new CliException($"--prompt-ids #{index + 1}: '{p}' is not a token id (ids are non-negative integers separated by commas).")
            : id >= vocabSize
            ? throw new CliException($"--prompt-ids #{index + 1}: token id {id}, outside the vocabulary 0..{vocabSize - 1}.")
            : id).ToArray();
    }

    private static (int Id, float Logit)[] TopK(ReadOnlySpan<float> logits, int k)
    {
        var best = new List<(int Id, float Logit)>(k + 1);
        for (var i = 0; i < logits.Length; i++)
        {
            var value = logits[i];
            if (best.Count == k && value <= best[^1].Logit)
            {
                continue;
            }

            var at = best.FindIndex(b => value > b.Logit);
            best.Insert(at < 0 ? best.Count : at, (i, value));
            if (best.Count > k)
            {
                best.RemoveAt(k);
            }
        }

        return best.ToArray();
    }

    private static void WriteJson(GenerationResult[] results, List<(int Id, float Logit)[]>[]? top)
    {
        using var json = JsonOutput.Create(indented: false);
        json.WriteStartArray();
        for (var i = 0; i < results.Length; i++)
        {
            json.WriteStartObject();
            WriteIds(json, "prompt_ids", results[i].PromptIds);
            WriteIds(json, "generated_ids", results[i].GeneratedIds);
            if (top is not null)
            {
                json.WriteStartArray("top_logits");
                foreach (var step in top[i])
                {
                    json.WriteStartArray();
                    foreach (var (id, logit) in step)
                    {
                        json.WriteStartArray();
                        json.WriteNumberValue(id);
                        json.WriteNumberValue(logit);
                        json.WriteEndArray();
                    }

                    json.WriteEndArray();
                }

                json.WriteEndArray();
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.Flush();
        Console.WriteLine();
    }

    private static void WriteIds(Utf8JsonWriter json, string name, IReadOnlyList<int> ids)
    {
        json.WriteStartArray(name);
        foreach (var id in ids)
        {
            json.WriteNumberValue(id);
        }

        json.WriteEndArray();
    }
}
