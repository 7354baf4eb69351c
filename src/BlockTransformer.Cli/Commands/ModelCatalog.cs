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

        return CompiledModels.All.FirstOrDefault(m => m.Info.Name == name)
            ?? throw new CliException($"unknown model '{name}'. Compiled models: {string.Join(", ", CompiledModels.All.Select(m => m.Info.Name))}.");
    }

    public static TensorDType DType(string? text, ModelDescriptor model) =>
        text is null ? model.DefaultDType
        : TensorDTypes.TryParse(text, out var dtype) ? dtype
        : throw new CliException($"--dtype must be f32, bf16 or f16, got '{text}'.");
}
