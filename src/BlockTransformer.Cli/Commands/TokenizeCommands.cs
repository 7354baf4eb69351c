using BlockTransformer.Text;

namespace BlockTransformer.Cli;

/// <summary>`bt tokenize`, `bt detokenize` and `bt tokenizer-train`: ids of a text, text of ids, and a new tokenizer.json.</summary>
internal static class TokenizeCommands
{
    public static int Tokenize(Arguments arguments)
    {
        var tokenizer = Inputs.RequiredTokenizer(arguments);
        var text = arguments.Value("--text");
        var file = arguments.ExistingFile("--file");
        var format = arguments.Value("--format") ?? "text";
        if (format is not ("text" or "json"))
        {
            throw new CliException($"--format must be text or json, got '{format}'.");
        }

        if ((text is null) == (file is null))
        {
            throw new CliException("give the text to tokenize as --text TEXT or --file FILE (one of the two).");
        }

        var ids = tokenizer.Encode(text ?? Inputs.ReadUtf8(file!, "--file"));
        if (format == "json")
        {
            using var json = JsonOutput.Create(indented: false);
            json.WriteStartObject();
            json.WriteStartArray("ids");
            foreach (var id in ids)
            {
                json.WriteNumberValue(id);
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            Console.WriteLine();
        }
        else
        {
            Console.WriteLine(string.Join(',', ids)); // the form --prompt-ids and detokenize --ids take
        }

        return 0;
    }

    public static int Detokenize(Arguments arguments)
    {
        var tokenizer = Inputs.RequiredTokenizer(arguments);
        var ids = GenerateCommand.ParseIds(arguments.Required("--ids"), "--ids", tokenizer.VocabularySize);
        if (ids.FirstOrDefault(id => !tokenizer.Contains(id), -1) is var missing and >= 0)
        {
            throw new CliException($"--ids: token id {missing} is not in {tokenizer.Source} (a gap in its ids 0..{tokenizer.VocabularySize - 1}).");
        }

        Console.WriteLine(tokenizer.Decode(ids));
        return 0;
    }

    public static int Train(Arguments arguments)
    {
        var corpus = arguments.ExistingFile("--corpus") ?? throw new CliException("--corpus FILE (UTF-8 text) is required.");
        var size = arguments.Int("--vocab", 4096, min: BpeTrainer.MinVocabularySize, max: 1 << 22);
        var output = arguments.Required("--out");
        if (Directory.Exists(output))
        {
            throw new CliException($"--out {output} is a directory; give a file name.");
        }

        var text = Inputs.ReadUtf8(corpus, "--corpus");
        if (text.Length == 0)
        {
            throw new CliException($"--corpus {corpus} is empty.");
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var json = BpeTrainer.Train(text, size);
        var temporary = output + ".tmp";
        File.WriteAllText(temporary, json);
        File.Move(temporary, output, overwrite: true); // a kill never leaves half a file under the real name
        var trained = TextTokenizer.Load(output).VocabularySize;
        Console.Error.WriteLine($"bt: wrote {output}: {trained} tokens{(trained < size ? $" (the corpus has no pair left that occurs twice, so fewer than {size})" : string.Empty)}, trained on {System.Text.Encoding.UTF8.GetByteCount(text)} bytes in {clock.Elapsed.TotalSeconds:F1} s");
        return 0;
    }
}
