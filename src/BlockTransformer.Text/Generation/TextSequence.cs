using System.Text;

namespace BlockTransformer.Text;

/// <summary>
/// One sequence's text as its tokens arrive: decodes them (whole characters only), finds stop sequences
/// across token boundaries and holds back any tail that could still become one, so nothing of a stop text is
/// ever emitted.
/// </summary>
internal sealed class TextSequence(StreamingDecoder decoder, IReadOnlyList<string> stops, Action<string> emit)
{
    private readonly StringBuilder pending = new();
    private readonly StringBuilder text = new();

    public string Text => text.ToString();

    public bool StoppedByText { get; private set; }

    /// <summary>Adds a token's text; false once a stop sequence has appeared (everything before it is emitted).</summary>
    public bool Add(int token)
    {
        pending.Append(decoder.Add(token));
        return Release(final: false);
    }

    /// <summary>The end of the sequence: emits what was held back, with U+FFFD for an incomplete last character.</summary>
    public void Finish()
    {
        if (!StoppedByText)
        {
            pending.Append(decoder.Flush());
            Release(final: true);
        }
    }

    private bool Release(bool final)
    {
        var held = pending.ToString();
        var stopAt = -1;
        foreach (var stop in stops)
        {
            var at = held.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (stopAt < 0 || at < stopAt))
            {
                stopAt = at;
            }
        }

        if (stopAt >= 0)
        {
            Emit(held[..stopAt]);
            pending.Clear();
            StoppedByText = true;
            return false;
        }

        var keep = final ? 0 : HeldBack(held);
        Emit(held[..^keep]);
        pending.Remove(0, held.Length - keep);
        return true;
    }

    /// <summary>Length of the longest end of <paramref name="held"/> that a stop sequence begins with.</summary>
    private int HeldBack(string held)
    {
        var longest = 0;
        foreach (var stop in stops)
        {
            for (var length = Math.Min(stop.Length - 1, held.Length); length > longest; length--)
            {
                if (held.AsSpan(held.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    longest = length;
                    break;
                }
            }
        }

        return longest;
    }

    private void Emit(string piece)
    {
        if (piece.Length > 0)
        {
            text.Append(piece);
            emit(piece);
        }
    }
}
