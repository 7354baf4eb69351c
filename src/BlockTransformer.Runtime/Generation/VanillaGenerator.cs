namespace BlockTransformer.Runtime;

/// <summary>Plain autoregressive generation with a KV cache: prefill the prompt, then one token per step.</summary>
public sealed class VanillaGenerator : TextGenerator
{
    private readonly IVanillaModel model;
    private float[] hidden = [];
    private int[] tokenIds = [];

    public VanillaGenerator(IVanillaModel model)
        : base(model) => this.model = model;

    protected override void Run(GenerationState state)
    {
        var info = model.Info;
        var d = info.Decoder.Hidden;
        var batch = state.BatchSize;
        var maxNew = state.Options.MaxNewTokens;
        var capacity = info.CheckedCachePositions(state.Prompts.Max(p => p.Length), maxNew);

        using var cache = new KvCache(batch, info.Decoder.Layers, capacity, info.Decoder.KvHeads, info.Decoder.HeadDim, info.Bf16KvCache);
        using var scratch = new Scratch();
        var rows = new DecoderRows();

        // Prefill one prompt at a time; only its last position goes through the LM head.
        for (var b = 0; b < batch; b++)
        {
            state.Cancellation.ThrowIfCancellationRequested();
            var prompt = state.Prompts[b];
            rows.Clear();
            for (var i = 0; i < prompt.Length; i++)
            {
                rows.Add(b, i, i);
            }

            var x = Rent(ref hidden, prompt.Length * d);
            model.Embed(prompt, x);
            model.Decoder(x, rows, cache, scratch);
            Sample(state, [b], x[^d..]);
        }

        state.PrefillDone();
        var running = Enumerable.Range(0, batch).ToList();
        for (var step = 1; step < maxNew; step++)
        {
            state.DropStopped(running);
            if (running.Count == 0)
            {
                return;
            }

            var ids = Rent(ref tokenIds, running.Count);
            rows.Clear();
            for (var a = 0; a < running.Count; a++)
            {
                var b = running[a];
                ids[a] = state.LastToken(b);
                var position = state.Prompts[b].Length + step - 1;
                rows.Add(b, position, position);
            }

            var x = Rent(ref hidden, running.Count * d);
            model.Embed(ids, x);
            model.Decoder(x, rows, cache, scratch);
            Sample(state, running, x);
        }
    }
}
