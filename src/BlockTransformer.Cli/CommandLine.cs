using System.CommandLine;
using System.CommandLine.Parsing;

namespace BlockTransformer.Cli;

/// <summary>How a flag takes values: none (a switch), one, or one per occurrence (repeatable).</summary>
internal enum FlagKind
{
    Value,
    Repeated,
    Switch,
}

/// <summary>One option of a command: its name, value name for the help, what it does (defaults included) and its kind.</summary>
internal sealed record Flag(string Name, string Help, string? ValueName = null, FlagKind Kind = FlagKind.Value);

/// <summary>
/// `bt`'s commands on System.CommandLine, which gives every command its <c>--help</c>, <c>--flag=value</c>, unknown
/// flags and stray arguments as errors, and <c>bt --version</c>. Each command declares its flags as data and
/// reads them through <see cref="Arguments"/>, which keeps the typed checks and their messages in one place.
/// </summary>
internal static class CommandLine
{
    public static RootCommand Build(IEnumerable<(string Name, string Help, IReadOnlyList<Flag> Flags, Func<Arguments, int> Run, string? Positional)> commands)
    {
        var root = new RootCommand("bt — Block Transformer models compiled to C#: list, inspect, generate text, benchmark.");
        foreach (var (name, help, flags, run, positional) in commands)
        {
            var command = new Command(name, help);
            var options = flags.ToDictionary(f => f.Name, f => Option(f, flags));
            foreach (var option in options.Values)
            {
                command.Options.Add(option);
            }

            Argument<string?>? argument = null;
            if (positional is not null)
            {
                argument = new Argument<string?>(positional) { Arity = ArgumentArity.ZeroOrOne, Description = $"the {positional} (or give --model)" };
                command.Arguments.Add(argument);
            }

            command.SetAction(result => run(new Arguments(result, options, argument)));
            root.Subcommands.Add(command);
        }

        return root;
    }

    private static Option Option(Flag flag, IReadOnlyList<Flag> all)
    {
        Option option = flag.Kind switch
        {
            FlagKind.Switch => new Option<bool>(flag.Name),
            FlagKind.Repeated => new Option<string[]>(flag.Name) { HelpName = flag.ValueName },
            _ => new Option<string>(flag.Name) { HelpName = flag.ValueName },
        };
        option.Description = flag.Help;
        if (flag.Kind != FlagKind.Switch)
        {
            // A flag whose value is missing would otherwise take the next flag as its value (`--model --prompt x`).
            option.Validators.Add(result =>
            {
                foreach (var token in result.Tokens)
                {
                    if (all.Any(f => f.Name == token.Value))
                    {
                        result.AddError($"{flag.Name} needs a value, but the next argument is the option {token.Value}.");
                    }
                }
            });
        }

        return option;
    }

    /// <summary>Parses and runs; parse errors and user errors are one `bt: error:` line each and exit code 1.</summary>
    public static int Run(RootCommand root, string[] args, Func<Exception, bool> isUserError)
    {
        var result = root.Parse(args.Length == 0 ? ["--help"] : args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Errors.Count > 0)
        {
            // One line: the first error is the cause (a stray '3' after an unknown '--top-kk' follows from it), a flag
            // without its value explains the stray word after it, and an unknown word says more than the "no command" it causes.
            var error = result.Errors.MinBy(e => e.Message.Contains(" needs a value, ", StringComparison.Ordinal) ? 0 : e.Message.StartsWith("Required command", StringComparison.Ordinal) ? 2 : 1)!;
            Console.Error.WriteLine($"bt: error: {error.Message.TrimEnd('.')} ('bt {string.Join(' ', CommandPath(result).Append("--help"))}' lists the options).");
            return 1;
        }

        try
        {
            // bt handles Ctrl+C itself (ConsoleInterrupt), and reports exceptions as one line below.
            return result.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (Exception e) when (isUserError(e))
        {
            Console.Error.WriteLine($"bt: error: {e.Message}");
            return 1;
        }
    }

    private static IEnumerable<string> CommandPath(ParseResult result)
    {
        var names = new List<string>();
        for (var symbol = result.CommandResult; symbol is not null && symbol.Parent is CommandResult parent; symbol = parent)
        {
            names.Insert(0, symbol.Command.Name);
        }

        return names;
    }
}
