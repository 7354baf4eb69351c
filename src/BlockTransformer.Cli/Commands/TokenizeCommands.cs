using BlockTransformer.Text;

namespace BlockTransformer.Cli;

/// <summary>`bt tokenize` and `bt detokenize`: a tokenizer.json's ids for a text, and the text of ids.</summary>
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
}
