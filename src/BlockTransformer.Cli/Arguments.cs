using System.CommandLine;
using System.Globalization;

namespace BlockTransformer.Cli;

/// <summary>
/// A command's parsed flags with typed reads whose errors name the flag. Values are what the user wrote (a
/// flag not given reads as its fallback), so a command can tell "not given" from any value.
/// </summary>
internal sealed class Arguments(ParseResult result, IReadOnlyDictionary<string, Option> options, Argument<string?>? positional)
{
    public IReadOnlyList<string> Positional => positional is not null && result.GetValue(positional) is { } value ? [value] : [];

    public bool Has(string name) => Option(name) switch
    {
        Option<bool> flag => result.GetValue(flag),
        var option => result.GetResult(option) is { Implicit: false },
    };

    public string? Value(string name) => Values(name).LastOrDefault();

    public IReadOnlyList<string> Values(string name) => result.GetResult(Option(name)) is { Implicit: false } given
        ? given.Tokens.Select(t => t.Value).ToList()
        : [];

    public string Required(string name) => Value(name) ?? throw new CliException($"{name} is required.");

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var text = Value(name);
        if (text is null)
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new CliException(max == int.MaxValue
                ? $"{name} must be an integer ≥ {min}, got '{text}'."
                : $"{name} must be an integer from {min} to {max}, got '{text}'.");
        }

        return value;
    }

    public ulong ULong(string name, ulong fallback)
    {
        var text = Value(name);
        return text is null ? fallback
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value
            : throw new CliException($"{name} must be a non-negative integer, got '{text}'.");
    }

    public float? Float(string name)
    {
        var text = Value(name);
        return text is null ? null
            : float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && float.IsFinite(value) ? value
            : throw new CliException($"{name} must be a number, got '{text}'.");
    }

    /// <summary>A path given by <paramref name="name"/> that must be an existing file (a directory is named as one).</summary>
    public string? ExistingFile(string name)
    {
        var path = Value(name);
        if (path is not null && Directory.Exists(path))
        {
            throw new CliException($"{name} {path} is a directory, not a file.");
        }

        if (path is not null && !File.Exists(path))
        {
            throw new CliException($"{name} {path}: no such file.");
        }

        return path;
    }

    private Option Option(string name) => options.TryGetValue(name, out var option) ? option
        : throw new InvalidOperationException($"the command reads {name}, which it does not declare.");
}
