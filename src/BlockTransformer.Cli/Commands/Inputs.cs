using System.Diagnostics;
using System.Text;
using BlockTransformer.Runtime;
using BlockTransformer.Text;

namespace BlockTransformer.Cli;

/// <summary>The files and models commands read, each checked once with a message naming its flag.</summary>
internal static class Inputs
{
    /// <summary>--tokenizer, if given, checked to fit <paramref name="model"/>'s vocabulary when there is one.</summary>
    public static TextTokenizer? Tokenizer(Arguments arguments, ModelInfo? model = null)
    {
        if (arguments.ExistingFile("--tokenizer") is not { } path)
        {
            return null;
        }

        var tokenizer = TextTokenizer.Load(path);
        if (model is not null && tokenizer.VocabularySize > model.VocabSize)
        {
            throw new CliException($"--tokenizer {path} has {tokenizer.VocabularySize} tokens, more than {model.Name}'s vocabulary of {model.VocabSize}: it is not this model's tokenizer.");
        }

        return tokenizer;
    }

    public static TextTokenizer RequiredTokenizer(Arguments arguments, ModelInfo? model = null) =>
        Tokenizer(arguments, model) ?? throw new CliException("--tokenizer FILE (a tokenizer.json) is required.");

    /// <summary>A file's text, which must be UTF-8 (a UTF-16 byte-order mark does not make it another encoding).</summary>
    public static string ReadUtf8(string path, string flag)
    {
        try
        {
            return TextTokenizer.ReadUtf8(path);
        }
        catch (DecoderFallbackException)
        {
            throw new CliException($"{flag} {path} is not UTF-8 text.");
        }
    }

    /// <summary>
    /// The model on <paramref name="backend"/>, from --weights or seeded random weights. Steps that take seconds
    /// for large models say so on a terminal; tensors with NaN or infinite values are warned about.
    /// </summary>
    public static ILanguageModel Model(Backend backend, ModelDescriptor descriptor, string? weights, ulong seed)
    {
        var what = weights is null
            ? $"seeded random weights (seed {seed}, {descriptor.DefaultDType}) for {descriptor.Info.Name}"
            : $"{weights} into {descriptor.Info.Name}";
        // On a terminal one line that ends with the seconds it took; in a log, the random-weights notice alone.
        var terminal = !Console.IsErrorRedirected;
        var line = weights is null ? $"bt: no --weights given: using {what}" : $"bt: loading {what}";
        if (terminal)
        {
            Console.Error.Write(line + "…");
        }
        else if (weights is null)
        {
            Console.Error.WriteLine(line);
        }

        var clock = Stopwatch.StartNew();
        var model = backend.Create(descriptor, weights, seed, warning => Console.Error.WriteLine($"{(terminal ? "\n" : string.Empty)}bt: warning: {warning}"));
        if (terminal)
        {
            Console.Error.WriteLine($" {clock.Elapsed.TotalSeconds:F1} s");
        }

        return model;
    }
}
