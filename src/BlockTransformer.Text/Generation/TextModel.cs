using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BlockTransformer.Runtime;

namespace BlockTransformer.Text;

/// <summary>
/// A compiled model with its tokenizer: prompts as text in, text out, streamed or not, with stop sequences and
/// a finish reason per sequence. Calls on one instance are serialized (the model's generator holds per-call
/// buffers); within a call all prompts run as one batch.
/// </summary>
public sealed class TextModel
{
    private readonly TextGenerator generator;
    private readonly SemaphoreSlim gate = new(1, 1);

    public TextModel(TextGenerator generator, TextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizer.VocabularySize > generator.Model.Info.VocabSize)
        {
            throw new ArgumentException($"the tokenizer {tokenizer.Source} has {tokenizer.VocabularySize} tokens, more than {generator.Model.Info.Name}'s vocabulary of {generator.Model.Info.VocabSize}.");
        }

        this.generator = generator;
        Tokenizer = tokenizer;
    }

    public TextTokenizer Tokenizer { get; }

    public ModelInfo Info => generator.Model.Info;

    /// <summary>
    /// A prompt's ids, refused with an <see cref="ArgumentException"/> when it tokenizes to nothing or when it
    /// and <paramref name="maxNewTokens"/> do not fit the model's context.
    /// </summary>
    public int[] EncodePrompt(string prompt, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var ids = Tokenizer.Encode(prompt);
        if (ids.Length == 0)
        {
            throw new ArgumentException("the prompt is empty after tokenization; give some text.");
        }

        Info.CheckedCachePositions(ids.Length, maxNewTokens);
        return ids;
    }

    /// <summary>
    /// Generates for every prompt as one batch. <paramref name="onText"/> gets each sequence's text as it is
    /// produced (whole characters; never any part of a stop sequence), on the generating thread. A cancelled
    /// <paramref name="cancellationToken"/> throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public TextCompletion[] Complete(IReadOnlyList<string> prompts, TextGenerationOptions options, Action<int, string>? onText = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        var ids = prompts.Select(p => EncodePrompt(p, options.Generation.MaxNewTokens)).ToArray();
        return CompleteIds(ids, options, onText, cancellationToken);
    }

    /// <summary>
    /// As <see cref="Complete"/> for prompts already tokenized. <paramref name="onToken"/>, if given, also sees
    /// every token with its logits (when the generator hands them over), before its text.
    /// </summary>
    public TextCompletion[] CompleteIds(IReadOnlyList<int[]> prompts, TextGenerationOptions options, Action<int, string>? onText = null, CancellationToken cancellationToken = default, TokenCallback? onToken = null)
    {
        if (options.StopSequences.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("a stop sequence is empty; every stop sequence needs at least one character.");
        }

        var sequences = Enumerable.Range(0, prompts.Count)
            .Select(i => new TextSequence(Tokenizer.CreateStreamingDecoder(), options.StopSequences, piece => onText?.Invoke(i, piece)))
            .ToArray();
        var observer = new Observer(sequences, Info.EosId, options.Generation.StopAtEos, onToken);
        gate.Wait(cancellationToken);
        GenerationResult[] results;
        try
        {
            results = generator.Generate(prompts, options.Generation, observer, cancellationToken);
        }
        finally
        {
            gate.Release();
        }

        foreach (var sequence in sequences)
        {
            sequence.Finish();
        }

        return results.Select((r, i) => new TextCompletion(sequences[i].Text, r.PromptIds, r.GeneratedIds, r.FinishReason)).ToArray();
    }

    /// <summary>
    /// Streams one prompt's text. Generation runs on a worker thread; leaving the enumeration early or
    /// cancelling stops it at the next token. The last update carries the finish reason and token counts.
    /// </summary>
    public async IAsyncEnumerable<TextUpdate> StreamAsync(string prompt, TextGenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ids = EncodePrompt(prompt, options.Generation.MaxNewTokens);
        var channel = Channel.CreateUnbounded<TextUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Task.Run(() =>
        {
            try
            {
                var result = CompleteIds([ids], options, (_, piece) => channel.Writer.TryWrite(new TextUpdate(piece)), stop.Token)[0];
                channel.Writer.TryWrite(new TextUpdate(string.Empty, result.FinishReason, ids.Length, result.GeneratedIds.Count));
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.Complete(e);
            }
        }, CancellationToken.None);

        try
        {
            await foreach (var update in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                yield return update;
            }
        }
        finally
        {
            stop.Cancel();
            await work.ConfigureAwait(false);
        }
    }

    /// <summary>Feeds each token to its sequence's text; a stop sequence ends the sequence, EOS adds no text.</summary>
    private sealed class Observer(TextSequence[] sequences, int eosId, bool stopAtEos, TokenCallback? onToken) : ITokenObserver
    {
        public bool OnToken(int sequence, int token, ReadOnlySpan<float> logits)
        {
            onToken?.Invoke(sequence, token, logits);
            return (token == eosId && stopAtEos) || sequences[sequence].Add(token);
        }
    }
}
