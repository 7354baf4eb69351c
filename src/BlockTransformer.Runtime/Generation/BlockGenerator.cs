namespace BlockTransformer.Runtime;

/// <summary>
/// The official Block Transformer generation procedure (brief §3): left-pad each prompt to whole blocks,
/// prefill the block decoder, then per block expand the context into R prefix vectors, run the token
/// decoder from an empty cache for L_B tokens, and feed the finished block back through the embedder.
/// Every sequence keeps its own block positions (0 for its first block), so a prompt's output does not
/// depend on the other prompts in the batch.
/// </summary>
public sealed class BlockGenerator : TextGenerator
{
    private readonly IBlockTransformerModel model;
    private float[] hidden = [];
    private float[] context = [];
    private float[] gathered = [];
    private int[] tokenIds = [];
    private readonly List<int> active = [];

    public BlockGenerator(IBlockTransformerModel model)
        : base(model) => this.model = model;

    protected override void Run(GenerationState state)
    {
        var info = model.Info;
        var blockDecoder = info.BlockDecoder!;
        var lb = info.BlockLength;
        var batch = state.BatchSize;
        var maxNew = state.Options.MaxNewTokens;

        // §3.2 left-pad with the pad id so every prompt ends on a block boundary.
        var tokens = state.Prompts.Select(info.LeftPadToBlocks).ToArray();
        var promptBlocks = tokens.Select(t => t.Length / lb).ToArray();

        var capacity = info.CheckedCachePositions(state.Prompts.Max(p => p.Length), maxNew);

        using var blockCache = new KvCache(batch, blockDecoder.Layers, capacity, blockDecoder.KvHeads, blockDecoder.HeadDim, info.Bf16KvCache);
        using var tokenCache = new KvCache(batch, info.Decoder.Layers, info.PrefixLength + lb - 1, info.Decoder.KvHeads, info.Decoder.HeadDim, info.Bf16KvCache);
        using var scratch = new Scratch();
        var rows = new DecoderRows();
        var contexts = Rent(ref context, batch * blockDecoder.Hidden);

        // §3.3 prefill, one prompt at a time (bounded activation memory): context = last block's output.
        for (var b = 0; b < batch; b++)
        {
            state.Cancellation.ThrowIfCancellationRequested();
            rows.Clear();
            for (var i = 0; i < promptBlocks[b]; i++)
            {
                rows.Add(b, i, i);
            }

            var x = Rent(ref hidden, promptBlocks[b] * blockDecoder.Hidden);
            model.Embed(tokens[b], x);
            model.BlockDecoder(x, rows, blockCache, scratch);
            x[^blockDecoder.Hidden..].CopyTo(contexts.Slice(b * blockDecoder.Hidden, blockDecoder.Hidden));
        }

        state.PrefillDone();

        // §3.4 decode loop: one block per round, every running sequence in one batch.
        var nextBlock = (int[])promptBlocks.Clone();
        var running = Enumerable.Range(0, batch).ToList();
        var newBlock = new int[lb];
        for (var produced = 0; produced < maxNew && running.Count > 0; produced += lb)
        {
            var count = Math.Min(maxNew - produced, lb);
            GenerateBlock(state, running, count, tokenCache, scratch, rows);
            if (produced + count >= maxNew)
            {
                break;
            }

            state.DropStopped(running);
            if (running.Count == 0)
            {
                break;
            }

            // Embed each finished block and advance the block decoder by one position.
            rows.Clear();
            var x = Rent(ref hidden, running.Count * blockDecoder.Hidden);
            for (var a = 0; a < running.Count; a++)
            {
                var b = running[a];
                for (var j = 0; j < lb; j++)
                {
                    newBlock[j] = state.Generated(b)[produced + j];
                }

                model.Embed(newBlock, x.Slice(a * blockDecoder.Hidden, blockDecoder.Hidden));
                rows.Add(b, nextBlock[b], nextBlock[b]);
                nextBlock[b]++;
            }

            model.BlockDecoder(x, rows, blockCache, scratch);
            for (var a = 0; a < running.Count; a++)
            {
                x.Slice(a * blockDecoder.Hidden, blockDecoder.Hidden).CopyTo(contexts.Slice(running[a] * blockDecoder.Hidden, blockDecoder.Hidden));
            }
        }
    }

    /// <summary>
    /// §3.1: prefix = Expand(ctx); the token decoder's first call has R rows and its last row predicts x_1;
    /// each later call feeds one token. A sequence that produced EOS stops at the end of that token.
    /// </summary>
    private void GenerateBlock(GenerationState state, List<int> sequences, int count, KvCache cache, Scratch scratch, DecoderRows rows)
    {
        var info = model.Info;
        var dBlock = info.BlockDecoder!.Hidden;
        var d = info.Decoder.Hidden;
        var r = info.PrefixLength;
        var training = state.Options.TokenPositions == TokenPositions.Training;
        var active = this.active;
        active.Clear();
        active.AddRange(sequences);

        var ctx = Rent(ref gathered, active.Count * dBlock);
        for (var a = 0; a < active.Count; a++)
        {
            context.AsSpan(active[a] * dBlock, dBlock).CopyTo(ctx.Slice(a * dBlock, dBlock));
        }

        var x = Rent(ref hidden, active.Count * r * d);
        model.Expand(ctx, active.Count, x);
        rows.Clear();
        foreach (var b in active)
        {
            for (var i = 0; i < r; i++)
            {
                rows.Add(b, i, training ? i : 0);
            }
        }

        model.TokenDecoder(x, rows, cache, scratch);
        var last = Rent(ref gathered, active.Count * d);
        for (var a = 0; a < active.Count; a++)
        {
            x.Slice(((a * r) + r - 1) * d, d).CopyTo(last.Slice(a * d, d));
        }

        Sample(state, active, last);
        for (var j = 1; j < count; j++)
        {
            state.DropStopped(active);
            if (active.Count == 0)
            {
                return;
            }

            var ids = Rent(ref tokenIds, active.Count);
            rows.Clear();
            for (var a = 0; a < active.Count; a++)
            {
                ids[a] = state.LastToken(active[a]);
                rows.Add(active[a], r + j - 1, training ? r + j - 1 : j);
            }

            x = Rent(ref hidden, active.Count * d);
            model.TokenEmbed(ids, x);
            model.TokenDecoder(x, rows, cache, scratch);
            Sample(state, active, x);
        }
    }
}
