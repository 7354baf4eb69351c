using System.Globalization;

namespace BlockTransformer.Cli;

/// <summary>
/// Minimal `--flag value` parser: every flag must be consumed by the command, so a typo is an error
/// that names the flag instead of being silently ignored.
/// </summary>
internal sealed class Arguments
{
    private readonly List<(string Name, string? Value)> flags = new();
    private readonly List<string> positional = new();
    private readonly HashSet<string> used = new();

    public Arguments(IEnumerable<string> args, IReadOnlySet<string> switches)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(arg);
            }
            else if (switches.Contains(arg))
            {
                flags.Add((arg, null));
            }
            else
            {
                flags.Add((arg, e.MoveNext() ? e.Current : throw new CliException($"{arg} needs a value.")));
            }
        }
    }

    public IReadOnlyList<string> Positional => positional;

    public bool Has(string name)
    {
        used.Add(name);
        return flags.Any(f => f.Name == name);
    }

    public string? Value(string name) => Values(name).LastOrDefault();

    public IReadOnlyList<string> Values(string name)
    {
        used.Add(name);
        return flags.Where(f => f.Name == name && f.Value is not null).Select(f => f.Value!).ToList();
    }

    public string Required(string name) => Value(name) ?? throw new CliException($"{name} is required.");

    public int Int(string name, int fallback, int min = int.MinValue)
    {
        var text = Value(name);
        if (text is null)
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min)
        {
            throw new CliException($"{name} must be an integer ≥ {min}, got '{text}'.");
        }

        return value;
    }

    public ulong ULong(string name, ulong fallback)
    {
        var text = Value(name);
        return text is null ? fallback
            : ulong.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
            : throw new CliException($"{name} must be a non-negative integer, got '{text}'.");
    }

    public float? Float(string name)
    {
        var text = Value(name);
        return text is null ? null
            : float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && float.IsFinite(value) ? value
            : throw new CliException($"{name} must be a number, got '{text}'.");
    }

    /// <summary>Fails on any flag the command did not read, naming it.</summary>
    public void RejectUnknown(string command)
    {
        var unknown = flags.Select(f => f.Name).FirstOrDefault(n => !used.Contains(n));
        if (unknown is not null)
        {
            throw new CliException($"unknown option {unknown} for '{command}'.");
        }
    }
}
