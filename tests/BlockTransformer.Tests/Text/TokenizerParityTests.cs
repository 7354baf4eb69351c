using System.Text;
using BlockTransformer.Text;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace BlockTransformer.Tests;

/// <summary>
/// The loader against Hugging Face's own tokenizers library (the Rust crate, through Tokenizers.DotNet) on
/// tokenizer files the tests write: the same ids for thousands of random strings, in both merge formats.
/// </summary>
public class TokenizerParityTests
{
    public const int Strings = 2500;

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    public void IdsEqualHuggingFacesOnRandomStrings(bool mergesAsPairs, int seed)
    {
        var path = TestTokenizer.Write(mergesAsPairs);
        var ours = TextTokenizer.Load(path);
        using var reference = new HfTokenizer(path);
        var random = new Random(seed);
        var mismatches = new List<string>();
        var nonTrivial = 0;
        for (var i = 0; i < Strings; i++)
        {
            var text = TestTokenizer.RandomText(random);
            var expected = reference.Encode(text).Select(id => (int)id).ToArray();
            var actual = ours.Encode(text);
            nonTrivial += actual.Length > 1 ? 1 : 0;
            if (!expected.SequenceEqual(actual))
            {
                mismatches.Add($"{Escape(text)}: reference [{string.Join(",", expected)}], ours [{string.Join(",", actual)}]");
            }
        }

        Assert.True(mismatches.Count == 0, $"seed {seed}: {mismatches.Count} of {Strings} differ, e.g.\n" + string.Join("\n", mismatches.Take(10)));
        Assert.True(nonTrivial > Strings / 2, "the strings should mostly be more than one token");
    }

    /// <summary>Cases where the obvious implementations differ from the reference: each one fails a simpler loader.</summary>
    [Theory]
    [InlineData("a    b")] // four spaces: the longest space-run token, not two two-space ones
    [InlineData("   ")]
    [InlineData("x  \ty")]
    [InlineData("𝒳y and 𝟎𝟏")] // letters and digits outside the BMP are \p{L} and \p{N}, not two surrogates
    [InlineData("E\u0301 and A\u030A")] // NFC first
    [InlineData("ab<|endoftext|>cd<|padding|>")] // added tokens inside words
    [InlineData("I'LL don't HE'S")] // contractions are lower-case only
    [InlineData("line\r\n\r\n  indented")]
    public void HardCasesEqualHuggingFaces(string text)
    {
        var path = TestTokenizer.Write();
        using var reference = new HfTokenizer(path);
        Assert.Equal(reference.Encode(text).Select(id => (int)id), TextTokenizer.Load(path).Encode(text));
    }

    [Fact]
    public void DecodeOfEncodeIsTheNfcTextAndEqualsHuggingFacesDecode()
    {
        var path = TestTokenizer.Write();
        var ours = TextTokenizer.Load(path);
        using var reference = new HfTokenizer(path);
        var random = new Random(3);
        for (var i = 0; i < Strings; i++)
        {
            var text = TestTokenizer.RandomText(random);
            var ids = ours.Encode(text);
            Assert.Equal(text.Normalize(NormalizationForm.FormC), ours.Decode(ids));

            // Tokenizers.DotNet decodes with skip_special_tokens: compare on ids without the two special ones.
            var plain = ids.Where(id => !ours.IsSpecial(id)).ToArray();
            Assert.Equal(reference.Decode(plain.Select(id => (uint)id).ToArray()), ours.Decode(plain));
        }
    }

    [Fact]
    public void BothMergeFormatsLoadToTheSameTokenizer()
    {
        var strings = TextTokenizer.Load(TestTokenizer.Write(mergesAsPairs: false));
        var pairs = TextTokenizer.Load(TestTokenizer.Write(mergesAsPairs: true));
        var random = new Random(4);
        for (var i = 0; i < 200; i++)
        {
            var text = TestTokenizer.RandomText(random);
            Assert.Equal(strings.Encode(text), pairs.Encode(text));
        }
    }

    /// <summary>What <see cref="BpeTrainer"/> writes, Hugging Face reads: the same ids as our loader on random strings.</summary>
    [Fact]
    public void TrainedTokenizersReadIdenticallyByBothLoaders()
    {
        var random = new Random(6);
        var corpus = string.Concat(Enumerable.Repeat(TestTokenizer.Corpus, 50)) + string.Concat(Enumerable.Range(0, 3000).Select(_ => TestTokenizer.RandomText(random) + " "));
        var path = TestModels.TempPath("trained.json");
        File.WriteAllText(path, BpeTrainer.Train(corpus, 700));
        var ours = TextTokenizer.Load(path);
        Assert.Equal(700, ours.VocabularySize);
        Assert.Equal(0, ours.AddedTokenId(BpeTrainer.EndOfText));
        using var reference = new HfTokenizer(path);
        for (var i = 0; i < 1000; i++)
        {
            var text = TestTokenizer.RandomText(random);
            Assert.Equal(reference.Encode(text).Select(id => (int)id), ours.Encode(text));
            Assert.Equal(text.Normalize(NormalizationForm.FormC), ours.Decode(ours.Encode(text)));
        }

        Assert.True(ours.Encode("In the beginning God created the heaven").Length < 10, "a trained vocabulary should merge frequent words");
    }

    /// <summary>The committed KJV tokenizer (4096 tokens, models/kjv) against the reference, on verses and random strings.</summary>
    [Fact]
    public void TheCommittedKjvTokenizerEqualsHuggingFaces()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "kjv-tokenizer.json");
        var ours = TextTokenizer.Load(path);
        using var reference = new HfTokenizer(path);
        Assert.Equal(4096, ours.VocabularySize);
        var random = new Random(7);
        string[] verses = ["In the beginning God created the heaven and the earth.", "And God said, Let there be light: and there was light.", "Jesus wept.<|endoftext|>Genesis 1\n\n"];
        foreach (var text in verses.Concat(Enumerable.Range(0, 1000).Select(_ => TestTokenizer.RandomText(random))))
        {
            Assert.Equal(reference.Encode(text).Select(id => (int)id), ours.Encode(text));
        }

        Assert.True(ours.Encode(verses[0]).Length <= 12, "a 4096-token KJV vocabulary spells the first verse in a few tokens");
    }

    private static string Escape(string text) => string.Concat(text.Select(c => c is >= ' ' and < '\u007F' ? c.ToString() : $"\\u{(int)c:X4}"));
}
