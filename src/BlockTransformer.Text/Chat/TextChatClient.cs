using System.Runtime.CompilerServices;
using BlockTransformer.Runtime;
using Microsoft.Extensions.AI;

namespace BlockTransformer.Text;

/// <summary>
/// <see cref="IChatClient"/> over a <see cref="TextModel"/>: the conversation becomes a prompt through
/// <see cref="PromptFormat"/>, and the answer is the model's continuation up to a stop sequence, EOS or the
/// token limit. Concurrent calls are accepted and run one after another (the model serializes them).
/// Without a temperature, top-p or top-k in <see cref="ChatOptions"/> decoding is greedy; a temperature of 0 is greedy too.
/// </summary>
public sealed class TextChatClient : IChatClient
{
    private readonly TextModel model;
    private readonly ChatClientMetadata metadata;

    public TextChatClient(TextModel model, ChatPromptFormat? promptFormat = null)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        PromptFormat = promptFormat ?? ChatPromptFormat.Plain;
        metadata = new ChatClientMetadata("BlockTransformer", defaultModelId: model.Info.Name);
    }

    public ChatPromptFormat PromptFormat { get; }

    /// <summary>Tokens an answer may have when <see cref="ChatOptions.MaxOutputTokens"/> is not given.</summary>
    public int DefaultMaxOutputTokens { get; init; } = 256;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (prompt, textOptions) = Request(messages, options);
        var result = await Task.Run(() => model.Complete([prompt], textOptions, cancellationToken: cancellationToken)[0], cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text.TrimStart()))
        {
            ModelId = model.Info.Name,
            ResponseId = Guid.NewGuid().ToString("N"),
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Reason(result.FinishReason),
            Usage = Usage(result.PromptIds.Count, result.GeneratedIds.Count),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (prompt, textOptions) = Request(messages, options);
        var responseId = Guid.NewGuid().ToString("N");
        var started = false; // the answer's leading whitespace (after "Assistant:") is dropped, as in GetResponseAsync
        await foreach (var update in model.StreamAsync(prompt, textOptions, cancellationToken).ConfigureAwait(false))
        {
            var text = started ? update.Text : update.Text.TrimStart();
            started |= text.Length > 0;
            if (text.Length > 0)
            {
                yield return Update(responseId, [new TextContent(text)]);
            }

            if (update.FinishReason is { } reason)
            {
                var last = Update(responseId, [new UsageContent(Usage(update.PromptTokens, update.GeneratedTokens))]);
                last.FinishReason = Reason(reason);
                yield return last;
            }
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(ChatClientMetadata) ? metadata
            : serviceType == typeof(TextModel) ? model
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    public void Dispose()
    {
    }

    private (string Prompt, TextGenerationOptions Options) Request(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var prompt = PromptFormat.Format(messages, options?.Instructions);
        var sampling = options?.Temperature is > 0 || options?.TopP is not null || options?.TopK is not null;
        if (options?.Temperature is < 0)
        {
            throw new ArgumentException($"temperature must be 0 (greedy) or more, got {options.Temperature}.");
        }

        var generation = new GenerationOptions
        {
            MaxNewTokens = options?.MaxOutputTokens ?? Math.Min(DefaultMaxOutputTokens, TokensLeft(prompt)),
            Sampling = sampling
                ? new SamplingOptions
                {
                    Greedy = false,
                    Temperature = options!.Temperature is > 0 and var t ? t : 1f,
                    TopP = options.TopP ?? 1f,
                    TopK = options.TopK ?? 0,
                    Seed = (ulong)(options.Seed ?? 0),
                }
                : new SamplingOptions(),
        };
        return (prompt, new TextGenerationOptions
        {
            Generation = generation,
            StopSequences = [.. PromptFormat.StopSequences, .. options?.StopSequences ?? []],
        });
    }

    /// <summary>The most tokens that still fit the model's context after the prompt (at least 1, so an over-long prompt gets the context error).</summary>
    private int TokensLeft(string prompt) => Math.Max(1, model.Info.MaxNewTokens(model.Tokenizer.Encode(prompt).Length));

    private ChatResponseUpdate Update(string responseId, IList<AIContent> contents) => new(ChatRole.Assistant, contents)
    {
        ResponseId = responseId,
        MessageId = responseId,
        ModelId = model.Info.Name,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private static ChatFinishReason Reason(FinishReason reason) => reason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    private static UsageDetails Usage(int input, int output) => new() { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output };
}
