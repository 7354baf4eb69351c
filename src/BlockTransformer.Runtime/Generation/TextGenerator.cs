namespace BlockTransformer.Runtime;

/// <summary>
/// The generation API shared by block and vanilla models: a batch of prompts of any lengths in, each
/// prompt's tokens out, streamed through a callback as they are chosen. Each sequence stops on its own.
/// </summary>
public abstract class TextGenerator
{
    private float[] logits = [];
    private int[] tokens = [];

    protected TextGenerator(ILanguageModel model) => Model = model;

    public ILanguageModel Model { get; }

    /// <summary>
    /// Whether the token callback gets each token's logits (on by default). Off, greedy decoding picks
    /// tokens inside the LM head (<see cref="ILanguageModel.LmHeadArgMax"/>) without writing rows × vocab
    /// logits, and the callback gets empty logits: what a throughput run wants.
    /// </summary>
    public bool LogitsInCallback { get; set; } = true;

    /// <summary>Prefill and decode wall time of the last <see cref="Generate"/> call.</summary>
    public GenerationTimings LastTimings { get; private set; } = new(TimeSpan.Zero, TimeSpan.Zero);

    public static TextGenerator For(ILanguageModel model) => model switch
    {
        IBlockTransformerModel block => new BlockGenerator(block),
        IVanillaModel vanilla => new VanillaGenerator(vanilla),
        _ => throw new ArgumentException($"{model.GetType().Name} is neither a block nor a vanilla model."),
    };

    /// <summary>
    /// Generates up to <see cref="GenerationOptions.MaxNewTokens"/> tokens for each prompt. A cancelled
    /// <paramref name="cancellationToken"/> stops the call at the next token (or, during prefill, the next
    /// prompt) with an <see cref="OperationCanceledException"/>; the tokens already streamed through
    /// <paramref name="onToken"/> are all there is, and the generator can be used again.
    /// </summary>
    public GenerationResult[] Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, TokenCallback? onToken = null, CancellationToken cancellationToken = default) =>
        Generate(prompts, options, onToken is null ? null : new CallbackObserver(onToken), cancellationToken);

    /// <summary>
    /// As the callback overload, with an <paramref name="observer"/> that can also end a sequence after any
    /// token (<see cref="FinishReason.Stop"/>), as the text layer's stop sequences do.
    /// </summary>
    public GenerationResult[] Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, ITokenObserver? observer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0)
        {
            throw new ArgumentException("at least one prompt is needed.");
        }

        for (var p = 0; p < prompts.Count; p++)
        {
            if (prompts[p] is null || prompts[p].Length == 0)
            {
                throw new ArgumentException($"prompt {p} is empty; a prompt needs at least one token id.");
            }

            foreach (var id in prompts[p])
            {
                if ((uint)id >= (uint)Model.Info.VocabSize)
                {
                    throw new ArgumentException($"prompt {p} has token id {id}, outside the vocabulary 0..{Model.Info.VocabSize - 1}.");
                }
            }
        }

        if (options.MaxNewTokens < 0)
        {
            throw new ArgumentException($"max new tokens must be 0 or more, got {options.MaxNewTokens}.");
        }

        options.Sampling.Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var state = new GenerationState(prompts, options, observer, Model.Info.VocabSize, cancellationToken);
        if (options.MaxNewTokens > 0)
        {
            Run(state);
        }

        LastTimings = state.Timings();
        return state.Results();
    }

    protected abstract void Run(GenerationState state);

    /// <summary>LM head on each sequence's final hidden row, then sample; EOS stops the sequence.</summary>
    protected void Sample(GenerationState state, List<int> sequences, Span<float> finalHidden)
    {
        if (state.Options.Sampling.Greedy && !LogitsInCallback)
        {
            var chosen = Rent(ref tokens, sequences.Count);
            Model.LmHeadArgMax(finalHidden, sequences.Count, chosen);
            for (var a = 0; a < sequences.Count; a++)
            {
                state.Record(sequences[a], chosen[a], ReadOnlySpan<float>.Empty, Model.Info.EosId);
            }

            return;
        }

        var vocab = Model.Info.VocabSize;
        var scores = Rent(ref logits, sequences.Count * vocab);
        Model.LmHead(finalHidden, sequences.Count, scores);
        state.ChooseAll(sequences, scores, vocab, Model.Info.EosId);
    }

    /// <summary>Grows <paramref name="buffer"/> when needed and returns its first <paramref name="length"/> items.</summary>
    protected internal static Span<T> Rent<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
        {
            buffer = new T[Math.Max(length, buffer.Length * 2)];
        }

        return buffer.AsSpan(0, length);
    }
}

/// <summary>Per-request bookkeeping shared by both generators: outputs, samplers, who is still running.</summary>
public sealed class GenerationState
{
    private readonly ITokenObserver? observer;
    private readonly Sampler[] samplers;
    private readonly FinishReason?[] finished;
    private int[] chosen = [];
    private readonly List<int>[] generated;
    private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
    private TimeSpan prefill;

    public GenerationState(IReadOnlyList<int[]> prompts, GenerationOptions options, ITokenObserver? observer, int vocabSize, CancellationToken cancellation = default)
    {
        Cancellation = cancellation;
        Prompts = prompts;
        Options = options;
        this.observer = observer;
        samplers = Enumerable.Range(0, prompts.Count).Select(i => new Sampler(options.Sampling, vocabSize, i)).ToArray();
        generated = prompts.Select(_ => new List<int>()).ToArray();
        finished = new FinishReason?[prompts.Count];
    }

    public IReadOnlyList<int[]> Prompts { get; }

    /// <summary>Checked before each token is recorded and, by the generators, before each prompt's prefill.</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>Called by a generator when every prompt has been prefilled (the first tokens may already exist).</summary>
    public void PrefillDone() => prefill = clock.Elapsed;

    public GenerationTimings Timings() => new(prefill, clock.Elapsed - prefill);

    public GenerationOptions Options { get; }

    public int BatchSize => Prompts.Count;

    /// <summary>True once a sequence produced EOS (with <see cref="GenerationOptions.StopAtEos"/> on) or its observer stopped it.</summary>
    public bool IsStopped(int sequence) => finished[sequence] is not null;

    public bool AllStopped => Array.IndexOf(finished, null) < 0;

    public int LastToken(int sequence) => generated[sequence][^1];

    public IReadOnlyList<int> Generated(int sequence) => generated[sequence];

    /// <summary>Removes the sequences that have stopped from <paramref name="sequences"/> (in place, no allocation).</summary>
    public void DropStopped(List<int> sequences)
    {
        for (var i = sequences.Count - 1; i >= 0; i--)
        {
            if (IsStopped(sequences[i]))
            {
                sequences.RemoveAt(i);
            }
        }
    }

    /// <summary>
    /// Samples one token per sequence from its row of <paramref name="logits"/> (rows in parallel, each
    /// sequence has its own sampler), then records and streams them in order on the calling thread.
    /// </summary>
    public unsafe void ChooseAll(List<int> sequences, Span<float> logits, int vocab, int eosId)
    {
        if (chosen.Length < sequences.Count)
        {
            chosen = new int[sequences.Count];
        }

        fixed (float* rows = logits)
        fixed (int* tokens = chosen)
        {
            var work = new SampleWork { Samplers = samplers, Sequences = sequences, Logits = rows, Vocab = vocab, Tokens = tokens };
            Parallelism.For(sequences.Count, vocab, ref work);
        }

        for (var a = 0; a < sequences.Count; a++)
        {
            Record(sequences[a], chosen[a], logits.Slice(a * vocab, vocab), eosId);
        }
    }

    /// <summary>
    /// Records and streams a token chosen elsewhere (by a device sampler); stops the sequence on EOS when
    /// <see cref="GenerationOptions.StopAtEos"/> is on, or when the observer says so. <paramref name="logits"/>
    /// may be empty. Throws <see cref="OperationCanceledException"/> instead once <see cref="Cancellation"/> is cancelled.
    /// </summary>
    public void Record(int sequence, int token, ReadOnlySpan<float> logits, int eosId)
    {
        Cancellation.ThrowIfCancellationRequested();
        generated[sequence].Add(token);
        var goOn = observer?.OnToken(sequence, token, logits) ?? true;
        if (token == eosId && Options.StopAtEos)
        {
            finished[sequence] = FinishReason.Eos;
        }
        else if (!goOn)
        {
            finished[sequence] = FinishReason.Stop;
        }
    }

    public GenerationResult[] Results() => Enumerable.Range(0, BatchSize)
        .Select(i => new GenerationResult(Prompts[i], generated[i], finished[i] ?? FinishReason.Length))
        .ToArray();
}

/// <summary>A <see cref="TokenCallback"/> as an observer that never stops a sequence.</summary>
internal sealed class CallbackObserver(TokenCallback callback) : ITokenObserver
{
    public bool OnToken(int sequence, int token, ReadOnlySpan<float> logits)
    {
        callback(sequence, token, logits);
        return true;
    }
}

/// <summary>Rows [start, end) of a sampling step: each row's sequence samples from its logits.</summary>
internal unsafe struct SampleWork : IParallelWork
{
    public Sampler[] Samplers;
    public List<int> Sequences;
    public float* Logits;
    public int* Tokens;
    public int Vocab;

    public readonly void Run(int start, int end)
    {
        for (var a = start; a < end; a++)
        {
            Tokens[a] = Samplers[Sequences[a]].Sample(new ReadOnlySpan<float>(Logits + ((long)a * Vocab), Vocab));
        }
    }
}

/// <summary>Where a generate call spent its time: prompt processing, then token-by-token decoding.</summary>
public sealed record GenerationTimings(TimeSpan Prefill, TimeSpan Decode)
{
    public TimeSpan Total => Prefill + Decode;
}
