using BlockTransformer.Runtime;
using BlockTransformer.Tests.Reference;
using static BlockTransformer.Tests.Reference.ReferenceMath;

namespace BlockTransformer.Tests;

/// <summary>
/// Teacher-forced scoring against a plain loop over the reference models' log-probabilities, written from the
/// training alignment (brief §2.6) without the runtime's caches or batching.
/// </summary>
public class ScorerTests
{
    [Theory]
    [InlineData("tiny_block", 16, 4)]
    [InlineData("tiny_block", 12, 6)] // a scored range that starts inside a block
    [InlineData("tiny_block_gqa", 16, 4)] // GQA, sequential residual in the token decoder
    [InlineData("tiny_vanilla", 20, 1)]
    [InlineData("tiny_vanilla_mqa", 9, 3)]
    public void NatsEqualTheReferenceLoop(string name, int length, int scoreFrom)
    {
        var descriptor = TestModels.Find(name);
        var weights = TestModels.WriteWeights(descriptor, TensorDType.F32, seed: 11);
        using var model = descriptor.Load(weights);
        var random = new Random(2);
        var window = Enumerable.Range(0, length).Select(_ => random.Next(model.Info.VocabSize)).ToArray();

        var score = new Scorer(model).ScoreWindow(window, scoreFrom);
        var (expectedNats, expectedTokens) = Reference(model.Info, ReferenceModels.ReadAll(weights), window, scoreFrom);
        Assert.Equal(expectedTokens, score.ScoredTokens);
        Assert.True(Math.Abs(score.Nats - expectedNats) <= 1e-4 * Math.Abs(expectedNats), $"nats {score.Nats} vs reference {expectedNats}");
    }

    [Fact]
    public void AWindowThatIsNotWholeBlocksIsRefused()
    {
        using var model = TestModels.Find("tiny_block").CreateRandom(1, TensorDType.F32);
        Assert.Contains("not a whole number of blocks", Assert.Throws<ArgumentException>(() => new Scorer(model).ScoreWindow([1, 2, 3, 4, 5, 6], 4)).Message);
    }

    private static (double Nats, List<int> Tokens) Reference(ModelInfo info, Func<string, float[]> tensor, int[] window, int scoreFrom)
    {
        var nats = 0.0;
        var tokens = new List<int>();
        void Add(double[] logits, int token, int position)
        {
            if (position >= scoreFrom)
            {
                var max = logits.Max();
                nats += max + Math.Log(logits.Sum(v => Math.Exp(v - max))) - logits[token];
                tokens.Add(token);
            }
        }

        if (info.Kind == ModelKind.Vanilla)
        {
            var decoder = new ReferenceDecoder(tensor, "gpt_neox.", ReferenceModels.Config(info, info.Decoder));
            var hidden = decoder.Forward(window.Select(t => Row(tensor("gpt_neox.embed_in.weight"), t, info.Decoder.Hidden)).ToArray(), Enumerable.Range(0, window.Length).ToArray());
            for (var t = 0; t + 1 < window.Length; t++)
            {
                Add(Linear(hidden[t], tensor("embed_out.weight"), null, info.VocabSize), window[t + 1], t + 1);
            }

            return (nats, tokens);
        }

        var (lb, r, d) = (info.BlockLength, info.PrefixLength, info.Decoder.Hidden);
        var width = info.BlockDecoder!.Hidden / lb;
        var blocks = window.Length / lb;
        var blockDecoder = new ReferenceDecoder(tensor, "block_decoder.gpt_neox.", ReferenceModels.Config(info, info.BlockDecoder));
        var tokenDecoder = new ReferenceDecoder(tensor, "token_decoder.gpt_neox.", ReferenceModels.Config(info, info.Decoder));
        var vectors = Enumerable.Range(0, blocks).Select(b => window.Skip(b * lb).Take(lb).SelectMany(t => Row(tensor("embedder.embeddings.weight"), t, width)).ToArray()).ToArray();
        var contexts = blockDecoder.Forward(vectors, Enumerable.Range(0, blocks).ToArray());
        for (var b = 1; b < blocks; b++)
        {
            // Block b is predicted from the block decoder's output at b - 1: [p_1..p_R, x_1..x_{L_B-1}] at 0..R+L_B-2.
            var expanded = Linear(contexts[b - 1], tensor("token_decoder.expansion_layer.weight"), tensor("token_decoder.expansion_layer.bias"), r * d);
            var inputs = Enumerable.Range(0, r).Select(i => expanded[(i * d)..((i + 1) * d)])
                .Concat(Enumerable.Range(0, lb - 1).Select(j => Row(tensor("token_decoder.gpt_neox.embed_in.weight"), window[(b * lb) + j], d)))
                .ToArray();
            var hidden = tokenDecoder.Forward(inputs, Enumerable.Range(0, inputs.Length).ToArray());
            for (var j = 0; j < lb; j++)
            {
                Add(Linear(hidden[r - 1 + j], tensor("token_decoder.embed_out.weight"), null, info.VocabSize), window[(b * lb) + j], (b * lb) + j);
            }
        }

        return (nats, tokens);
    }
}
