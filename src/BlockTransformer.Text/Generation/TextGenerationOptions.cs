using BlockTransformer.Runtime;

namespace BlockTransformer.Text;

/// <summary>Token-level options plus what only text has: stop sequences.</summary>
public sealed record TextGenerationOptions
{
    public GenerationOptions Generation { get; init; } = new();

    /// <summary>
    /// Texts that end a sequence where they first appear in its generated text, also when they span several
    /// tokens; the stop text itself is not part of the result (<see cref="FinishReason.Stop"/>).
    /// </summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];
}

/// <summary>One prompt's outcome as text. <see cref="GeneratedIds"/> are every token chosen, including those of a cut stop text and a final EOS.</summary>
public sealed record TextCompletion(string Text, IReadOnlyList<int> PromptIds, IReadOnlyList<int> GeneratedIds, FinishReason FinishReason);

/// <summary>
/// A piece of streamed text. The last update of a stream has <see cref="FinishReason"/> set (its text may be
/// empty) and the token counts of the whole call.
/// </summary>
public sealed record TextUpdate(string Text, FinishReason? FinishReason = null, int PromptTokens = 0, int GeneratedTokens = 0);
