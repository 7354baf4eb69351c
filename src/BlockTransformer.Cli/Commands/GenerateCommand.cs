using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BlockTransformer.Runtime;
using BlockTransformer.Text;

namespace BlockTransformer.Cli;

/// <summary>
/// `bt generate`: the Runtime's generation API on prompts of text (through a tokenizer and the text layer) or
/// of token ids. One prompt in text format streams as it is generated; a batch prints each result at the end.
/// </summary>
internal static class GenerateCommand
{
    public static int Run(Arguments arguments)
    {
        var descriptor = ModelCatalog.Find(arguments.Value("--model"));
        var vocab = descriptor.Info.VocabSize;
        var weights = arguments.ExistingFile("--weights");
        var weightsSeed = arguments.ULong("--weights-seed", 0);
        var tokenizer = Inputs.Tokenizer(arguments, descriptor.Info);
        var texts = TextPrompts(arguments);
        var stops = arguments.Values("--stop");
        var idPrompts = arguments.Values("--prompt-ids").Select((text, i) => ParseIds(text, $"--prompt-ids #{i + 1}", vocab)).ToArray();
        if (texts.Count > 0 && idPrompts.Length > 0)
        {
            throw new CliException("give prompts as text (--prompt, --prompt-file) or as ids (--prompt-ids), not both.");
        }

        if ((texts.Count > 0 || stops.Count > 0) && tokenizer is null)
        {
            throw new CliException($"{(texts.Count > 0 ? "--prompt" : "--stop")} is text, which needs --tokenizer FILE (a tokenizer.json).");
        }

        if (texts.Count == 0 && idPrompts.Length == 0)
        {
            throw new CliException("a prompt is required: --prompt \"TEXT\" with --tokenizer FILE, or --prompt-ids \"1,2,3\" (repeat either for a batch).");
        }

        var options = new GenerationOptions
        {
            MaxNewTokens = arguments.Int("--max-new-tokens", 16, min: 0),
            Sampling = Sampler(arguments, vocab),
            TokenPositions = (arguments.Value("--positions") ?? "training") switch
            {
                "training" => TokenPositions.Training,
                "reference" => TokenPositions.Reference,
                var other => throw new CliException($"--positions must be training or reference, got '{other}'."),
            },
            StopAtEos = !arguments.Has("--keep-going-after-eos"),
        };
        var prompts = texts.Count > 0
            ? texts.Select((text, i) => Encode(tokenizer!, text, i, options.MaxNewTokens, descriptor.Info)).ToArray()
            : idPrompts;
        var format = arguments.Value("--format") ?? "text";
        if (format is not ("text" or "json"))
        {
            throw new CliException($"--format must be text or json, got '{format}'.");
        }

        var topLogits = arguments.Int("--top-logits", 0, min: 0, max: vocab);
        if (topLogits > 0 && format != "json")
        {
            throw new CliException("--top-logits is printed with --format json only.");
        }

        using var interrupt = new ConsoleInterrupt(); // Ctrl+C stops generating and prints what was generated
        using var backend = Backend.Open(arguments.Value("--device"));
        backend.CheckSupported(options.Sampling);
        Admission.Check(backend, descriptor.Info, prompts.Max(p => p.Length), options.MaxNewTokens, prompts.Length, "give fewer or shorter prompts or a smaller --max-new-tokens");
        using var model = Inputs.Model(backend, descriptor, weights, weightsSeed);
        var generator = backend.Generator(model, copyLogits: topLogits > 0);
        var run = new Collector(prompts.Length, topLogits, format == "text" && prompts.Length == 1, tokenizer is not null);
        var clock = Stopwatch.StartNew();
        Outcome[] outcomes;
        try
        {
            outcomes = tokenizer is null
                ? generator.Generate(prompts, options, run.OnToken, interrupt.Token).Select(r => new Outcome(r.PromptIds, r.GeneratedIds, null, Reason(r.FinishReason))).ToArray()
                : new TextModel(generator, tokenizer)
                    .CompleteIds(prompts, new TextGenerationOptions { Generation = options, StopSequences = stops }, run.OnText, interrupt.Token, run.OnToken)
                    .Select(c => new Outcome(c.PromptIds, c.GeneratedIds, c.Text, Reason(c.FinishReason))).ToArray();
        }
        catch (OperationCanceledException) when (interrupt.Requested)
        {
            // What the callbacks saw is what was generated; a sequence may already have ended on EOS.
            var eos = descriptor.Info.EosId;
            outcomes = prompts.Select((prompt, i) => new Outcome(prompt, run.Tokens[i], tokenizer is null ? null : run.Texts[i].ToString(),
                options.StopAtEos && run.Tokens[i].Count > 0 && run.Tokens[i][^1] == eos ? "eos" : "interrupted")).ToArray();
        }

        var seconds = clock.Elapsed.TotalSeconds;
        var generated = outcomes.Sum(r => r.GeneratedIds.Count);
        if (format == "json")
        {
            WriteJson(outcomes, topLogits > 0 ? run.Top : null);
        }
        else if (run.Streaming)
        {
            Console.WriteLine();
        }
        else
        {
            for (var i = 0; i < outcomes.Length; i++)
            {
                Console.WriteLine($"[{i}] {outcomes[i].Text ?? string.Join(' ', outcomes[i].GeneratedIds)}");
            }
        }

        Console.Error.WriteLine($"bt: {generated} tokens in {seconds:F3} s ({generated / Math.Max(seconds, 1e-9):F1} tokens/s, batch {prompts.Length}, prefill included, on {backend.Name}){(interrupt.Requested ? "; interrupted, the output is what was generated until then" : string.Empty)}");
        return interrupt.Requested ? interrupt.ExitCode : 0;
    }

    /// <summary>A prompt's result as printed: ids, text (with a tokenizer) and why it ended.</summary>
    private sealed record Outcome(IReadOnlyList<int> PromptIds, IReadOnlyList<int> GeneratedIds, string? Text, string FinishReason);

    /// <summary>What the callbacks collect while generating: streamed output, tokens and top logits for an interrupted run or JSON.</summary>
    private sealed class Collector(int prompts, int topLogits, bool streaming, bool text)
    {
        public bool Streaming => streaming;

        public List<int>[] Tokens { get; } = Enumerable.Range(0, prompts).Select(_ => new List<int>()).ToArray();

        public StringBuilder[] Texts { get; } = Enumerable.Range(0, prompts).Select(_ => new StringBuilder()).ToArray();

        public List<(int Id, float Logit)[]>[] Top { get; } = Enumerable.Range(0, prompts).Select(_ => new List<(int, float)[]>()).ToArray();

        public void OnToken(int sequence, int token, ReadOnlySpan<float> logits)
        {
            foreach (var logit in logits)
            {
                if (!float.IsFinite(logit))
                {
                    throw new CliException($"the model's logits are not finite (NaN or infinity) at generated token {Tokens[sequence].Count + 1} of prompt {sequence + 1}: the weights hold NaN or infinite values, or overflow.");
                }
            }

            Tokens[sequence].Add(token);
            if (topLogits > 0)
            {
                Top[sequence].Add(TopK(logits, topLogits));
            }

            if (streaming && !text)
            {
                Console.Write(token.ToString(CultureInfo.InvariantCulture) + " ");
            }
        }

        public void OnText(int sequence, string piece)
        {
            Texts[sequence].Append(piece);
            if (streaming)
            {
                Console.Write(piece);
                Console.Out.Flush();
            }
        }
    }

    private static string Reason(FinishReason reason) => reason switch
    {
        FinishReason.Eos => "eos",
        FinishReason.Stop => "stop",
        _ => "length",
    };

    /// <summary>The text prompts: every --prompt, then every line of --prompt-file.</summary>
    private static List<string> TextPrompts(Arguments arguments)
    {
        var prompts = arguments.Values("--prompt").ToList();
        if (arguments.ExistingFile("--prompt-file") is { } file)
        {
            var lines = Inputs.ReadUtf8(file, "--prompt-file").Split('\n').Select(l => l.TrimEnd('\r')).ToList();
            if (lines.Count > 0 && lines[^1].Length == 0)
            {
                lines.RemoveAt(lines.Count - 1); // the newline that ends the last line
            }

            prompts.AddRange(lines.Count > 0 ? lines : throw new CliException($"--prompt-file {file} has no lines."));
        }

        return prompts;
    }

    private static int[] Encode(TextTokenizer tokenizer, string text, int index, int maxNewTokens, ModelInfo info)
    {
        var ids = tokenizer.Encode(text);
        if (ids.Length == 0)
        {
            throw new CliException($"prompt {index + 1} is empty after tokenization; give some text.");
        }

        if (info.MaxNewTokens(ids.Length) < Math.Max(maxNewTokens, 1))
        {
            throw new CliException($"prompt {index + 1} is {ids.Length} tokens; with --max-new-tokens {maxNewTokens} it does not fit {info.Name}'s context (at most {info.MaxNewTokens(ids.Length)} new tokens after it).");
        }

        return ids;
    }

    /// <summary>Greedy unless a sampling option is given; every option checked against the model's vocabulary.</summary>
    public static SamplingOptions Sampler(Arguments arguments, int vocab)
    {
        var greedy = arguments.Has("--greedy");
        var temperature = arguments.Float("--temperature");
        var topK = arguments.Value("--top-k") is null ? 0 : arguments.Int("--top-k", 0, min: 1, max: vocab);
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
            throw new CliException("--" + e.Message);
        }

        return options;
    }

    /// <summary>Parses "1,2,3" and checks every id against the vocabulary before any weights are loaded.</summary>
    public static int[] ParseIds(string text, string what, int vocabSize)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.All(p => p.Length == 0))
        {
            throw new CliException($"{what} is empty; give at least one token id, e.g. \"1,2,3\".");
        }

        return parts.Select(p => !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? throw new CliException($"{what}: '{p}' is not a token id (ids are non-negative integers separated by commas).")
            : id >= vocabSize
            ? throw new CliException($"{what}: token id {id}, outside the vocabulary 0..{vocabSize - 1}.")
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

    private static void WriteJson(Outcome[] outcomes, List<(int Id, float Logit)[]>[]? top)
    {
        using var json = JsonOutput.Create(indented: false);
        json.WriteStartArray();
        for (var i = 0; i < outcomes.Length; i++)
        {
            json.WriteStartObject();
            WriteIds(json, "prompt_ids", outcomes[i].PromptIds);
            WriteIds(json, "generated_ids", outcomes[i].GeneratedIds);
            if (outcomes[i].Text is { } text)
            {
                json.WriteString("text", text);
            }

            json.WriteString("finish_reason", outcomes[i].FinishReason);
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
