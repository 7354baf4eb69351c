using BlockTransformer.Models;
using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>Compiled test models and temporary weight files for them.</summary>
internal static class TestModels
{
    public static ModelDescriptor Find(string name) => CompiledModels.All.Single(m => m.Info.Name == name);

    public static string WriteWeights(ModelDescriptor model, TensorDType dtype, ulong seed = 7)
    {
        var path = TempPath($"{model.Info.Name}-{dtype}-{seed}.safetensors");
        model.WriteRandomWeights(path, seed, dtype);
        return path;
    }

    public static string TempPath(string fileName)
    {
        var directory = Path.Combine(Path.GetTempPath(), "bt-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, fileName);
    }

    /// <summary>Generates and records, per sequence, the logits every token was chosen from.</summary>
    public static (GenerationResult[] Results, List<float[]>[] Logits) Run(ILanguageModel model, int[][] prompts, GenerationOptions options)
    {
        var logits = prompts.Select(_ => new List<float[]>()).ToArray();
        var results = TextGenerator.For(model).Generate(prompts, options, (sequence, _, scores) => logits[sequence].Add(scores.ToArray()));
        return (results, logits);
    }
}
