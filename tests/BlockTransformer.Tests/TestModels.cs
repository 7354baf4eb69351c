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

    /// <summary>
    /// Random f32 weights (the first seed from <paramref name="firstSeed"/> that has one) and a prompt whose greedy
    /// continuation, not stopped at EOS, has EOS at an index that <paramref name="accept"/> takes. Seeds are
    /// searched because a random tiny model's greedy continuations often settle into loops that never reach
    /// EOS, so whether one seed has such a prompt is luck (changing how random weights are drawn moved
    /// tiny_block's seed 21 from having one to not).
    /// </summary>
    public static (ulong Seed, int[] Prompt, int EosAt) FindEosContinuation(ModelDescriptor descriptor, ulong firstSeed, Func<int, bool> accept)
    {
        var noStop = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false };
        for (var seed = firstSeed; seed < firstSeed + 20; seed++)
        {
            using var model = descriptor.CreateRandom(seed, TensorDType.F32);
            var random = new Random(1);
            for (var attempt = 0; attempt < 500; attempt++)
            {
                var prompt = Enumerable.Range(0, random.Next(1, 9)).Select(_ => random.Next(1, model.Info.VocabSize)).ToArray();
                var index = TextGenerator.For(model).Generate([prompt], noStop)[0].GeneratedIds.ToList().IndexOf(model.Info.EosId);
                if (index >= 0 && accept(index))
                {
                    return (seed, prompt, index);
                }
            }
        }

        throw new InvalidOperationException($"{descriptor.Info.Name}: no prompt reaches EOS as required under seeds {firstSeed}..{firstSeed + 19}.");
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
