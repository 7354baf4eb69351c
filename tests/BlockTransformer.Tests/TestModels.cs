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

    /// <summary>
    /// Cancels <paramref name="generator"/> from its token callback once sequence 0 has <paramref name="after"/>
    /// tokens: the call throws, every other sequence stopped one token short (sequence 0 is recorded first
    /// in each step), the tokens streamed are the uncancelled call's, the generator then gives what it gave
    /// before, and a token cancelled before the call stops it before any token.
    /// </summary>
    public static void AssertCancelsAtTheNextToken(TextGenerator generator, int[][] prompts, int after)
    {
        var options = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false };
        var expected = generator.Generate(prompts, options);
        using var stop = new CancellationTokenSource();
        var streamed = prompts.Select(_ => new List<int>()).ToArray();
        Assert.Throws<OperationCanceledException>(() => generator.Generate(prompts, options, (sequence, token, _) =>
        {
            streamed[sequence].Add(token);
            if (sequence == 0 && streamed[0].Count == after)
            {
                stop.Cancel();
            }
        }, stop.Token));

        for (var s = 0; s < prompts.Length; s++)
        {
            Assert.Equal(expected[s].GeneratedIds.Take(s == 0 ? after : after - 1), streamed[s]);
        }

        Assert.Equal(expected.Select(r => r.GeneratedIds), generator.Generate(prompts, options).Select(r => r.GeneratedIds));
        Assert.Throws<OperationCanceledException>(() => generator.Generate(prompts, options, (_, _, _) => Assert.Fail("a token after cancellation"), stop.Token));
    }
}
