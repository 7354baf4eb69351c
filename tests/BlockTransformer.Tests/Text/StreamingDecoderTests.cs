using System.Text;
using BlockTransformer.Text;

namespace BlockTransformer.Tests;

/// <summary>Incremental decoding: whole characters only, and the pieces add up to the full decode.</summary>
public class StreamingDecoderTests
{
    [Fact]
    public void ACharacterSplitOverTokensIsEmittedOnceWhole()
    {
        var tokenizer = TextTokenizer.Load(TestTokenizer.Write());
        var ids = Encoding.UTF8.GetBytes("a😀").Select(b => ByteToken(tokenizer, b)).ToArray(); // one token per byte
        var decoder = tokenizer.CreateStreamingDecoder();
        var pieces = ids.Select(decoder.Add).ToList();
        Assert.Equal(["a", string.Empty, string.Empty, string.Empty, "😀"], pieces);
        Assert.Equal(string.Empty, decoder.Flush());
    }

    [Fact]
    public void PiecesConcatenateToTheFullDecodeForAnyIds()
    {
        var tokenizer = TextTokenizer.Load(TestTokenizer.Write());
        var random = new Random(5);
        for (var trial = 0; trial < 2000; trial++)
        {
            // Random ids make invalid UTF-8 too: lone continuation bytes, truncated characters, ids past the tokenizer.
            var ids = Enumerable.Range(0, random.Next(1, 12)).Select(_ => random.Next(0, tokenizer.VocabularySize + 5)).ToArray();
            var decoder = tokenizer.CreateStreamingDecoder();
            var pieces = ids.Select(decoder.Add).ToList();
            pieces.Add(decoder.Flush());
            Assert.Equal(tokenizer.Decode(ids), string.Concat(pieces));
            Assert.All(pieces, piece => Assert.False(piece.Length > 0 && char.IsHighSurrogate(piece[^1]), "a piece ends inside a surrogate pair"));
        }
    }

    [Fact]
    public void AnIncompleteLastCharacterFlushesAsOneReplacement()
    {
        var tokenizer = TextTokenizer.Load(TestTokenizer.Write());
        var decoder = tokenizer.CreateStreamingDecoder();
        Assert.Equal(string.Empty, decoder.Add(ByteToken(tokenizer, 0xF0)));
        Assert.Equal(string.Empty, decoder.Add(ByteToken(tokenizer, 0x9F)));
        Assert.Equal("\uFFFD", decoder.Flush());
    }

    /// <summary>The id of the single-byte token for <paramref name="value"/>, found by decoding, not from the loader's table.</summary>
    private static int ByteToken(TextTokenizer tokenizer, byte value) =>
        Enumerable.Range(0, tokenizer.VocabularySize).First(id => tokenizer.TokenBytes(id).SequenceEqual(new[] { value }));
}
