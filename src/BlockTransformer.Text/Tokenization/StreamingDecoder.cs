using System.Text;

namespace BlockTransformer.Text;

/// <summary>
/// Decodes one sequence's ids as they arrive. A token can end in the middle of a UTF-8 character (byte-level
/// BPE splits an emoji's four bytes over several tokens); its bytes are held until the character is whole, so
/// no piece ever carries half a character, and the pieces, with <see cref="Flush"/>'s, concatenate to
/// <see cref="TextTokenizer.Decode"/> of all the ids (bytes that never form a character become U+FFFD there too).
/// </summary>
public sealed class StreamingDecoder
{
    private readonly TextTokenizer tokenizer;
    private readonly Decoder utf8 = new UTF8Encoding(false, throwOnInvalidBytes: false).GetDecoder();
    private char[] chars = new char[16];

    internal StreamingDecoder(TextTokenizer tokenizer) => this.tokenizer = tokenizer;

    /// <summary>The text that token <paramref name="id"/> completes; empty while a character is still partial.</summary>
    public string Add(int id) => Convert(tokenizer.TokenBytes(id), flush: false);

    /// <summary>What is left at the end of the stream: U+FFFD for a character that never completed, or empty.</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        var needed = utf8.GetCharCount(bytes, flush);
        if (chars.Length < needed)
        {
            chars = new char[Math.Max(needed, chars.Length * 2)];
        }

        var count = utf8.GetChars(bytes, chars, flush);
        return new string(chars, 0, count);
    }
}
