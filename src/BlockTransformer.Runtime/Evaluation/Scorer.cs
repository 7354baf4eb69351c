namespace BlockTransformer.Runtime;

/// <summary>The log-likelihood of a text's tokens: nats summed over the scored tokens, and which tokens they were.</summary>
public sealed record Score(double Nats, IReadOnlyList<int> ScoredTokens)
{
    public double Loss => ScoredTokens.Count == 0 ? double.NaN : Nats / ScoredTokens.Count;
}

/// <summary>
/// Scores token windows the way the models are trained (brief §2.6), teacher-forced. A vanilla model predicts
/// token t + 1 from positions 0..t. A block model runs its block decoder over the window's blocks; the output at
/// block i, expanded into R prefix vectors, starts the token decoder on block i + 1 (<c>[p_1..p_R, x_1..x_{L_B-1}]</c>
/// at training positions 0..R+L_B-2, a fresh cache per block), whose last L_B rows predict x_1..x_{L_B}; block 0
/// is never predicted. Tokens at window positions below <c>scoreFrom</c> are not scored.
/// </summary>
public sealed class Scorer(ILanguageModel model)
{
    /// <summary>LM-head rows per call: bounds the logits buffer to this many rows of the vocabulary.</summary>
    private const int HeadRows = 64;

    private readonly List<(int Row, int Token)> targets = [];
    private float[] hidden = [];
    private float[] logits = [];

    public ModelInfo Info => model.Info;

    /// <summary>Scores one window; its length must be a multiple of L_B (1 for vanilla) and fit the model's context.</summary>
    public Score ScoreWindow(ReadOnlySpan<int> window, int scoreFrom)
    {
        var info = model.Info;
        if (window.Length == 0 || window.Length % info.BlockLength != 0)
        {
            throw new ArgumentException($"a window of {window.Length} tokens is not a whole number of blocks of {info.BlockLength}.");
        }

        targets.Clear();
        var final = model switch
        {
            IBlockTransformerModel block => BlockForward(block, window, scoreFrom),
            IVanillaModel vanilla => VanillaForward(vanilla, window, scoreFrom),
            _ => throw new ArgumentException($"{model.GetType().Name} is neither a block nor a vanilla model."),
        };
        return Nats(final);
    }

    private Span<float> VanillaForward(IVanillaModel vanilla, ReadOnlySpan<int> window, int scoreFrom)
    {
        var d = vanilla.Info.Decoder;
        var rows = new DecoderRows();
        for (var t = 0; t < window.Length; t++)
        {
            rows.Add(0, t, t);
            if (t + 1 < window.Length && t + 1 >= scoreFrom)
            {
                targets.Add((t, window[t + 1]));
            }
        }

        using var cache = new KvCache(1, d.Layers, window.Length, d.KvHeads, d.HeadDim, vanilla.Info.Bf16KvCache);
        using var scratch = new Scratch();
        var x = TextGenerator.Rent(ref hidden, window.Length * d.Hidden);
        vanilla.Embed(window, x);
        vanilla.Decoder(x, rows, cache, scratch);
        return x;
    }

    private Span<float> BlockForward(IBlockTransformerModel block, ReadOnlySpan<int> window, int scoreFrom)
    {
        var info = block.Info;
        var (lb, r) = (info.BlockLength, info.PrefixLength);
        var (dBlock, d) = (info.BlockDecoder!.Hidden, info.Decoder.Hidden);
        var blocks = window.Length / lb;
        var rows = new DecoderRows();
        using var scratch = new Scratch();

        var contexts = new float[blocks * dBlock];
        using (var blockCache = new KvCache(1, info.BlockDecoder.Layers, blocks, info.BlockDecoder.KvHeads, info.BlockDecoder.HeadDim, info.Bf16KvCache))
        {
            for (var i = 0; i < blocks; i++)
            {
                rows.Add(0, i, i);
            }

            block.Embed(window, contexts);
            block.BlockDecoder(contexts, rows, blockCache, scratch);
        }

        // Every predicted block (1..blocks-1) is one sequence of R + L_B - 1 token-decoder rows.
        var sequences = blocks - 1;
        var length = r + lb - 1;
        var x = TextGenerator.Rent(ref hidden, Math.Max(1, sequences * length) * d);
        if (sequences == 0)
        {
            return x;
        }

        var prefix = new float[sequences * r * d];
        block.Expand(contexts.AsSpan(0, sequences * dBlock), sequences, prefix);
        var inputs = new int[lb - 1];
        rows.Clear();
        for (var s = 0; s < sequences; s++)
        {
            var target = window.Slice((s + 1) * lb, lb);
            prefix.AsSpan(s * r * d, r * d).CopyTo(x.Slice(s * length * d));
            target[..(lb - 1)].CopyTo(inputs);
            block.TokenEmbed(inputs, x.Slice(((s * length) + r) * d, (lb - 1) * d));
            for (var p = 0; p < length; p++)
            {
                rows.Add(s, p, p);
            }

            for (var j = 0; j < lb; j++)
            {
                if (((s + 1) * lb) + j >= scoreFrom)
                {
                    targets.Add(((s * length) + r - 1 + j, target[j]));
                }
            }
        }

        using var tokenCache = new KvCache(sequences, info.Decoder.Layers, length, info.Decoder.KvHeads, info.Decoder.HeadDim, info.Bf16KvCache);
        block.TokenDecoder(x, rows, tokenCache, scratch);
        return x;
    }

    /// <summary>−log softmax(logits)[target] of every target row, the LM head run <see cref="HeadRows"/> rows at a time.</summary>
    private Score Nats(Span<float> final)
    {
        var d = model.Info.Decoder.Hidden;
        var vocab = model.Info.VocabSize;
        var gathered = new float[Math.Min(HeadRows, Math.Max(1, targets.Count)) * d];
        var nats = 0.0;
        for (var start = 0; start < targets.Count; start += HeadRows)
        {
            var count = Math.Min(HeadRows, targets.Count - start);
            for (var a = 0; a < count; a++)
            {
                final.Slice(targets[start + a].Row * d, d).CopyTo(gathered.AsSpan(a * d, d));
            }

            var scores = TextGenerator.Rent(ref logits, count * vocab);
            model.LmHead(gathered.AsSpan(0, count * d), count, scores);
            for (var a = 0; a < count; a++)
            {
                nats += NegativeLogLikelihood(scores.Slice(a * vocab, vocab), targets[start + a].Token);
            }
        }

        return new Score(nats, targets.Select(t => t.Token).ToArray());
    }

    private static double NegativeLogLikelihood(ReadOnlySpan<float> row, int token)
    {
        var max = double.NegativeInfinity;
        foreach (var value in row)
        {
            max = Math.Max(max, value);
        }

        var sum = 0.0;
        foreach (var value in row)
        {
            sum += Math.Exp(value - max);
        }

        return max + Math.Log(sum) - row[token];
    }
}
