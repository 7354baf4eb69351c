namespace BlockTransformer.Runtime;

/// <summary>RoPE positions of the token decoder (brief §3.6).</summary>
public enum TokenPositions
{
    /// <summary>As in training and scoring: prefix at 0..R-1, token x_j at R+j-1.</summary>
    Training,

    /// <summary>As the reference generate() does: every prefix row at 0, x_j at j.</summary>
    Reference,
}

/// <summary>How tokens are chosen from logits. Greedy unless <see cref="Greedy"/> is false.</summary>
public sealed record SamplingOptions
{
    public bool Greedy { get; init; } = true;

    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the K most likely tokens; 0 = no limit.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probability reaches P; 1 = no limit.</summary>
    public float TopP { get; init; } = 1f;

    public ulong Seed { get; init; }

    public void Validate()
    {
        if (!Greedy && !(Temperature > 0 && float.IsFinite(Temperature)))
        {
            throw new ArgumentException($"temperature must be a positive number, got {Temperature}.");
        }

        if (TopK < 0)
        {
            throw new ArgumentException($"top-k must be 0 (off) or positive, got {TopK}.");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new ArgumentException($"top-p must be in (0, 1], got {TopP}.");
        }
    }
}

public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 16;

    public SamplingOptions Sampling { get; init; } = new();

    public TokenPositions TokenPositions { get; init; } = TokenPositions.Training;

    /// <summary>Stop a sequence after EOS (per block for block models). Benchmarks turn this off.</summary>
    public bool StopAtEos { get; init; } = true;
}

/// <summary>Why a sequence ended: the names are OpenAI's <c>finish_reason</c> values, and EOS is its own.</summary>
public enum FinishReason
{
    /// <summary>It produced <see cref="GenerationOptions.MaxNewTokens"/> tokens (or was cut short by cancellation).</summary>
    Length,

    /// <summary>It produced EOS (with <see cref="GenerationOptions.StopAtEos"/> on); its ids end with that EOS.</summary>
    Eos,

    /// <summary>Its <see cref="ITokenObserver"/> stopped it (a stop sequence of the text layer).</summary>
    Stop,
}

/// <summary>One prompt's outcome. Generated ids end with EOS when the sequence stopped on it.</summary>
public sealed record GenerationResult(IReadOnlyList<int> PromptIds, IReadOnlyList<int> GeneratedIds, FinishReason FinishReason)
{
    public bool StoppedAtEos => FinishReason == FinishReason.Eos;
}

/// <summary>
/// Called for every token as soon as it is chosen, with the raw logits it was sampled from; empty when
/// the generator does not hand them over (<see cref="TextGenerator.LogitsInCallback"/> off, or a GPU
/// generator that does not copy them back).
/// </summary>
public delegate void TokenCallback(int sequence, int token, ReadOnlySpan<float> logits);

/// <summary>
/// Sees every token as soon as it is chosen, like <see cref="TokenCallback"/>, and decides whether its
/// sequence goes on: returning false ends the sequence after this token with <see cref="FinishReason.Stop"/>
/// while the other sequences of the batch continue. An interface rather than a second delegate type, so a
/// lambda never binds to the wrong one of two <c>Generate</c> overloads.
/// </summary>
public interface ITokenObserver
{
    bool OnToken(int sequence, int token, ReadOnlySpan<float> logits);
}
