using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace BlockTransformer.Text;

/// <summary>
/// Hugging Face's pre-tokenization for byte-level BPE: first the added tokens are split out (leftmost, and
/// the longest one where several start at the same place, as Hugging Face's matcher does), then the rest is
/// split with GPT-2's pattern <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.
/// The pattern is matched here by hand over Unicode scalar values rather than by .NET's Regex, which
/// classifies UTF-16 code units: a letter or digit outside the BMP (𝐀, 𠀀, 𝟎) is two surrogates of category
/// Cs to it, not \p{L} or \p{N}, and would be split differently from the reference.
/// </summary>
internal sealed class Gpt2PreTokenizer : PreTokenizer
{
    private readonly Dictionary<char, string[]> addedByFirstChar;
    private readonly bool useRegex;

    public Gpt2PreTokenizer(IEnumerable<string> addedTokens, bool useRegex)
    {
        this.useRegex = useRegex;
        addedByFirstChar = addedTokens.GroupBy(t => t[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Length).ToArray());
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    private List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int, int)>();
        var start = 0;
        for (var i = 0; i < text.Length;)
        {
            var added = AddedTokenAt(text, i);
            if (added == 0)
            {
                i++;
                continue;
            }

            SplitPlain(text, start, i, pieces);
            pieces.Add((i, added));
            i += added;
            start = i;
        }

        SplitPlain(text, start, text.Length, pieces);
        return pieces;
    }

    /// <summary>Length of the longest added token starting at <paramref name="at"/>, or 0.</summary>
    private int AddedTokenAt(ReadOnlySpan<char> text, int at)
    {
        if (addedByFirstChar.TryGetValue(text[at], out var candidates))
        {
            foreach (var token in candidates)
            {
                if (text[at..].StartsWith(token, StringComparison.Ordinal))
                {
                    return token.Length;
                }
            }
        }

        return 0;
    }

    private void SplitPlain(ReadOnlySpan<char> text, int start, int end, List<(int, int)> pieces)
    {
        if (start == end)
        {
            return;
        }

        if (!useRegex)
        {
            pieces.Add((start, end - start));
            return;
        }

        var span = text[..end];
        for (var i = start; i < end;)
        {
            var length = MatchAt(span, i);
            pieces.Add((i, length));
            i += length;
        }
    }

    /// <summary>The pattern's first alternative that matches at <paramref name="i"/>, and its length (never 0).</summary>
    private static int MatchAt(ReadOnlySpan<char> text, int i)
    {
        if (text[i] == '\'' && Contraction(text[(i + 1)..]) is var suffix and > 0)
        {
            return 1 + suffix;
        }

        // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class.
        var first = text[i] == ' ' && i + 1 < text.Length ? i + 1 : i;
        foreach (var kind in (ReadOnlySpan<CharKind>)[CharKind.Letter, CharKind.Number, CharKind.Other])
        {
            if (Run(text, first, kind) is var run and > 0)
            {
                return first - i + run;
            }
        }

        // "\s+(?!\S)": whitespace up to the end, or all but the last whitespace before a non-space; else "\s+".
        var spaces = Run(text, i, CharKind.Space);
        if (i + spaces == text.Length)
        {
            return spaces;
        }

        var lastLength = Rune.DecodeLastFromUtf16(text[i..(i + spaces)], out _, out var last) == OperationStatus.Done ? last : 1;
        return spaces > lastLength ? spaces - lastLength : spaces;
    }

    private static int Contraction(ReadOnlySpan<char> rest)
    {
        foreach (var suffix in (ReadOnlySpan<string>)["s", "t", "re", "ve", "m", "ll", "d"])
        {
            if (rest.StartsWith(suffix, StringComparison.Ordinal))
            {
                return suffix.Length;
            }
        }

        return 0;
    }

    private enum CharKind
    {
        Letter,
        Number,
        Space,
        Other,
    }

    /// <summary>Length in UTF-16 units of the run of <paramref name="kind"/> scalars starting at <paramref name="i"/>.</summary>
    private static int Run(ReadOnlySpan<char> text, int i, CharKind kind)
    {
        var j = i;
        while (j < text.Length)
        {
            Rune.DecodeFromUtf16(text[j..], out var rune, out var length);
            if (Kind(rune) != kind)
            {
                break;
            }

            j += length;
        }

        return j - i;
    }

    private static CharKind Kind(Rune rune)
    {
        if (Rune.IsWhiteSpace(rune))
        {
            return CharKind.Space;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharKind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharKind.Number,
            _ => CharKind.Other,
        };
    }
}
