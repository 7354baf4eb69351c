using BlockTransformer.Models;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>Finds a compiled model by its spec name.</summary>
internal static class ModelCatalog
{
    public static ModelDescriptor Find(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new CliException("--model NAME is required; run 'bt list' to see the compiled models.");
        }

        var names = CompiledModels.All.Select(m => m.Info.Name).ToList();
        var closest = names.MinBy(n => EditDistance(n, name));
        return CompiledModels.All.FirstOrDefault(m => m.Info.Name == name)
            ?? throw new CliException(EditDistance(closest!, name) <= Math.Max(2, name.Length / 3)
                ? $"unknown model '{name}'; did you mean '{closest}'? ('bt list' shows all {names.Count})"
                : $"unknown model '{name}'. Compiled models: {string.Join(", ", names)}.");
    }

    /// <summary>Levenshtein distance: insertions, deletions and substitutions turning <paramref name="a"/> into <paramref name="b"/>.</summary>
    private static int EditDistance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            previous = current;
        }

        return previous[b.Length];
    }

    public static TensorDType DType(string? text, ModelDescriptor model) =>
        text is null ? model.DefaultDType
        : TensorDTypes.TryParse(text, out var dtype) ? dtype
        : throw new CliException($"--dtype must be f32, bf16 or f16, got '{text}'.");
}
