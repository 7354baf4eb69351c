using BlockTransformer.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace BlockTransformer.Gpu;

/// <summary>
/// The generation API of <see cref="TextGenerator"/> for GPU models. Weights, KV caches, activations and
/// sampling stay on the device; each generated token costs one small download of the batch's token ids
/// (for EOS and streaming), and each decoder call one upload of its row table. Every sequence of the
/// batch runs every step (a stopped sequence's rows are computed and ignored), so shapes stay fixed.
/// </summary>
public abstract class GpuTextGenerator : TextGenerator
{
    private readonly bool copyLogits;
    private float[] hostLogits = [];

    /// <param name="copyLogits">Download each step's logits for the token callback (tests, --top-logits); off by default.</param>
    protected GpuTextGenerator(GpuModel model, bool copyLogits)
        : base(model)
    {
        GpuModel = model;
        this.copyLogits = copyLogits;
    }

    public GpuModel GpuModel { get; }

    public static GpuTextGenerator For(GpuModel model, bool copyLogits = false) => model switch
    {
        GpuBlockModel block => new GpuBlockGenerator(block, copyLogits),
        GpuVanillaModel vanilla => new GpuVanillaGenerator(vanilla, copyLogits),
        _ => throw new ArgumentException($"{model.GetType().Name} is neither a block nor a vanilla GPU model."),
    };

    /// <summary>LM head and device sampling (draw n = token n of every sequence) for rows 0..batch-1 (row b is sequence b), then records the tokens.</summary>
    protected void SampleAll(GenerationState state, ArrayView<float> finalHidden, Buffers buffers, DeviceSampling sampling)
    {
        var batch = state.BatchSize;
        var vocab = GpuModel.Info.VocabSize;
        GpuModel.LmHead(finalHidden, batch, buffers.Logits.View, buffers.Scratch);
        GpuModel.Sample(buffers.Logits.View, batch, sampling, buffers.Tokens.View, buffers.Scratch);
        buffers.Tokens.View.SubView(0, batch).CopyToCPU(buffers.HostTokens.AsSpan(0, batch));
        if (copyLogits)
        {
            hostLogits = hostLogits.Length >= batch * vocab ? hostLogits : new float[batch * vocab];
            buffers.Logits.View.SubView(0, (long)batch * vocab).CopyToCPU(hostLogits.AsSpan(0, batch * vocab));
        }

        for (var b = 0; b < batch; b++)
        {
            if (!state.IsStopped(b))
            {
                var logits = copyLogits ? hostLogits.AsSpan(b * vocab, vocab) : Span<float>.Empty;
                state.Record(b, buffers.HostTokens[b], logits, GpuModel.Info.EosId);
            }
        }
    }

    /// <summary>Most rows one kernel launch takes: rows are a grid's y or z dimension, which CUDA caps at 65535.</summary>
    public const int MaxLaunchRows = 65535;

    /// <summary>Refuses, before anything is allocated, a batch whose decoder calls would exceed <see cref="MaxLaunchRows"/>.</summary>
    protected static void CheckLaunchRows(GenerationState state, int rowsPerSequence)
    {
        if ((long)state.BatchSize * rowsPerSequence > MaxLaunchRows)
        {
            throw new GpuException($"batch {state.BatchSize} is too large for the GPU kernels: a decode step launches {rowsPerSequence} row(s) per sequence, at most {MaxLaunchRows} rows in all (CUDA's grid limit), so at most {MaxLaunchRows / rowsPerSequence} sequences per call.");
        }
    }

    /// <summary>Between prefill calls: a cancelled call waits for the kernels already queued, which use the buffers it is about to free.</summary>
    protected void ThrowIfCancelled(GenerationState state)
    {
        if (state.Cancellation.IsCancellationRequested)
        {
            GpuModel.Device.Synchronize();
            state.Cancellation.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Device buffers of one generate call, sized up front so the decode loop allocates nothing.</summary>
    protected sealed class Buffers : IDisposable
    {
        public Buffers(GpuModel model, int batch, int maxRows, int width, int maxTokens)
        {
            var device = model.Device;
            Hidden = device.Allocate<float>((long)GpuModel.PaddedRows(maxRows) * width, "hidden states");
            Final = device.Allocate<float>((long)GpuModel.PaddedRows(batch) * width, "final hidden rows");
            Logits = device.Allocate<float>((long)batch * model.Info.VocabSize, "logits");
            Tokens = device.Allocate<int>(Math.Max(batch, maxTokens), "token ids");
            Rows = new DeviceRows(device);
            Scratch = new GpuScratch(device);
            HostTokens = new int[batch];
        }

        public DeviceBuffer<float> Hidden { get; }

        public DeviceBuffer<float> Final { get; }

        public DeviceBuffer<float> Logits { get; }

        public DeviceBuffer<int> Tokens { get; }

        public DeviceRows Rows { get; }

        public GpuScratch Scratch { get; }

        /// <summary>The batch's sampled ids, downloaded after each token.</summary>
        public int[] HostTokens { get; }

        public void UploadTokens(ReadOnlySpan<int> ids) => Tokens.View.SubView(0, ids.Length).CopyFromCPU(ids);

        public void Dispose()
        {
            Hidden.Dispose();
            Final.Dispose();
            Logits.Dispose();
            Tokens.Dispose();
            Rows.Dispose();
            Scratch.Dispose();
        }
    }
}

/// <summary>The Block Transformer procedure of <see cref="BlockGenerator"/> (brief §3) with device-resident state.</summary>
public sealed class GpuBlockGenerator(GpuBlockModel model, bool copyLogits = false) : GpuTextGenerator(model, copyLogits)
{
    protected override void Run(GenerationState state)
    {
        var info = model.Info;
        var blockDecoder = info.BlockDecoder!;
        var lb = info.BlockLength;
        var r = info.PrefixLength;
        var batch = state.BatchSize;
        var maxNew = state.Options.MaxNewTokens;
        var training = state.Options.TokenPositions == TokenPositions.Training;
        var sampling = DeviceSampling.From(state.Options.Sampling, draw: 0);
        CheckLaunchRows(state, r); // the token decoder's first call of a block has R rows per sequence

        // §3.2 left-pad with the pad id so every prompt ends on a block boundary.
        var tokens = state.Prompts.Select(info.LeftPadToBlocks).ToArray();
        var capacity = info.CheckedCachePositions(state.Prompts.Max(p => p.Length), maxNew);

        var width = Math.Max(blockDecoder.Hidden, info.Decoder.Hidden);
        var maxRows = Math.Max(tokens.Max(t => t.Length) / lb, batch * r);
        using var blockCache = new GpuKvCache(model.Device, blockDecoder.Layers, batch, capacity, blockDecoder.KvDim, info.Bf16KvCache, "block decoder");
        using var tokenCache = new GpuKvCache(model.Device, info.Decoder.Layers, batch, r + lb - 1, info.Decoder.KvDim, info.Bf16KvCache, "token decoder");
        using var contexts = model.Device.Allocate<float>((long)GpuModel.PaddedRows(batch) * blockDecoder.Hidden, "block contexts");
        using var buffers = new Buffers(model, batch, maxRows, width, Math.Max(tokens.Max(t => t.Length), batch * lb));
        var rows = buffers.Rows;
        var hidden = buffers.Hidden.View;

        // §3.3 prefill, one prompt at a time: context = the block decoder's output at the last prompt block.
        for (var b = 0; b < batch; b++)
        {
            ThrowIfCancelled(state);
            var blocks = tokens[b].Length / lb;
            rows.Clear();
            for (var i = 0; i < blocks; i++)
            {
                rows.Add(b, i, i);
            }

            rows.Upload();
            buffers.UploadTokens(tokens[b]);
            model.Embed(buffers.Tokens.View, blocks, hidden);
            model.BlockDecoder(hidden, rows, blockCache, buffers.Scratch);
            model.CopyRows(hidden, blocks - 1, 0, contexts.View, b, 1, blockDecoder.Hidden);
        }

        model.Device.Synchronize();
        state.PrefillDone();

        // §3.4 decode loop: one block per round for the whole batch.
        var nextBlock = tokens.Select(t => t.Length / lb).ToArray();
        var newBlocks = new int[batch * lb];
        for (var produced = 0; produced < maxNew; produced += lb)
        {
            var count = Math.Min(maxNew - produced, lb);

            // §3.1: prefix = Expand(ctx); the token decoder's first call has R rows, its last row predicts x_1.
            model.Expand(contexts.View, batch, hidden, buffers.Scratch);
            rows.Clear();
            for (var b = 0; b < batch; b++)
            {
                for (var i = 0; i < r; i++)
                {
                    rows.Add(b, i, training ? i : 0);
                }
            }

            rows.Upload();
            model.TokenDecoder(hidden, rows, tokenCache, buffers.Scratch);
            model.CopyRows(hidden, r - 1, r, buffers.Final.View, 0, batch, info.Decoder.Hidden);
            SampleAll(state, buffers.Final.View, buffers, sampling with { Draw = produced });
            for (var j = 1; j < count && !state.AllStopped; j++)
            {
                rows.Clear();
                for (var b = 0; b < batch; b++)
                {
                    rows.Add(b, r + j - 1, training ? r + j - 1 : j);
                }

                rows.Upload();
                model.TokenEmbed(buffers.Tokens.View, batch, hidden);
                model.TokenDecoder(hidden, rows, tokenCache, buffers.Scratch);
                SampleAll(state, hidden, buffers, sampling with { Draw = produced + j });
            }

            if (produced + count >= maxNew || state.AllStopped)
            {
                break;
            }

            // Embed each finished block and advance the block decoder by one position.
            rows.Clear();
            for (var b = 0; b < batch; b++)
            {
                var generated = state.Generated(b);
                for (var j = 0; j < lb; j++)
                {
                    newBlocks[(b * lb) + j] = state.IsStopped(b) ? info.PadId : generated[produced + j];
                }

                rows.Add(b, nextBlock[b], nextBlock[b]);
                nextBlock[b]++;
            }

            rows.Upload();
            buffers.UploadTokens(newBlocks);
            model.Embed(buffers.Tokens.View, batch, hidden);
            model.BlockDecoder(hidden, rows, blockCache, buffers.Scratch);
            model.CopyRows(hidden, 0, 1, contexts.View, 0, batch, blockDecoder.Hidden);
        }
    }
}

/// <summary>Plain autoregressive generation (<see cref="VanillaGenerator"/>) with device-resident state.</summary>
public sealed class GpuVanillaGenerator(GpuVanillaModel model, bool copyLogits = false) : GpuTextGenerator(model, copyLogits)
{
    protected override void Run(GenerationState state)
    {
        var info = model.Info;
        var d = info.Decoder.Hidden;
        var batch = state.BatchSize;
        var maxNew = state.Options.MaxNewTokens;
        var sampling = DeviceSampling.From(state.Options.Sampling, draw: 0);
        CheckLaunchRows(state, 1);
        var capacity = info.CheckedCachePositions(state.Prompts.Max(p => p.Length), maxNew);

        var longest = state.Prompts.Max(p => p.Length);
        using var cache = new GpuKvCache(model.Device, info.Decoder.Layers, batch, capacity, info.Decoder.KvDim, info.Bf16KvCache, "decoder");
        using var buffers = new Buffers(model, batch, Math.Max(longest, batch), d, Math.Max(longest, batch));
        var rows = buffers.Rows;
        var hidden = buffers.Hidden.View;

        // Prefill one prompt at a time; only its last position goes through the LM head.
        for (var b = 0; b < batch; b++)
        {
            ThrowIfCancelled(state);
            var prompt = state.Prompts[b];
            rows.Clear();
            for (var i = 0; i < prompt.Length; i++)
            {
                rows.Add(b, i, i);
            }

            rows.Upload();
            buffers.UploadTokens(prompt);
            model.Embed(buffers.Tokens.View, prompt.Length, hidden);
            model.Decoder(hidden, rows, cache, buffers.Scratch);
            model.CopyRows(hidden, prompt.Length - 1, 0, buffers.Final.View, b, 1, d);
        }

        SampleAll(state, buffers.Final.View, buffers, sampling);
        model.Device.Synchronize();
        state.PrefillDone();
        for (var step = 1; step < maxNew && !state.AllStopped; step++)
        {
            rows.Clear();
            for (var b = 0; b < batch; b++)
            {
                var position = state.Prompts[b].Length + step - 1;
                rows.Add(b, position, position);
            }

            rows.Upload();
            model.Embed(buffers.Tokens.View, batch, hidden);
            model.Decoder(hidden, rows, cache, buffers.Scratch);
            SampleAll(state, hidden, buffers, sampling with { Draw = step });
        }
    }
}
