using System.Text.Json.Nodes;
using BlockTransformer.Text;

namespace BlockTransformer.Tests;

/// <summary>Files the loader must refuse, each with one message naming the file and the JSON path.</summary>
public class TokenizerLoaderTests
{
    public static TheoryData<string, string> BadFiles => new()
    {
        { "model.merges[0] names", "merge-unknown" },
        { "has id 2, which", "vocab-duplicate-id" },
        { "model.type 'WordPiece' is not supported", "model-type" },
        { "normalizer.type 'Lowercase' is not supported", "normalizer" },
        { "normalizer.normalizers[1].type 'Strip' is not supported", "normalizer-sequence" },
        { "pre_tokenizer.type 'Whitespace' is not supported", "pre-tokenizer" },
        { "pre_tokenizer.add_prefix_space true is not supported", "prefix-space" },
        { "decoder.type 'WordPiece' is not supported", "decoder" },
        { "post_processor.type 'TemplateProcessing' is not supported", "post-processor" },
        { "model.dropout must be null", "dropout" },
        { "added_tokens[2].lstrip true is not supported", "lstrip" },
        { "model.vocab lacks the byte-level character", "missing-byte" },
        { "must be two tokens separated by one space", "merge-format" },
        { "truncation must be null", "truncation" },
        { "added_tokens[0] gives \"<|endoftext|>\" id 7", "added-conflict" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFilesAreOneLineErrorsNamingTheJsonPath(string expected, string mutation)
    {
        var path = TestTokenizer.Write(edit: root => Mutate(root, mutation));
        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(path)).Message;
        Assert.Contains(expected, error);
        Assert.StartsWith(path + ":", error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void NotJsonNotUtf8AndDirectoriesAreNamed()
    {
        var notJson = TestModels.TempPath("tokenizer.json");
        File.WriteAllText(notJson, "{\"model\": [1, 2,");
        Assert.Contains("not valid JSON (line 1", Assert.Throws<TokenizerException>(() => TextTokenizer.Load(notJson)).Message);

        var binary = TestModels.TempPath("tokenizer.json");
        File.WriteAllBytes(binary, [0x7B, 0xFF, 0xFE, 0x7D]);
        Assert.Contains("not valid UTF-8", Assert.Throws<TokenizerException>(() => TextTokenizer.Load(binary)).Message);

        var directory = Path.GetDirectoryName(binary)!;
        Assert.Contains("is a directory", Assert.Throws<TokenizerException>(() => TextTokenizer.Load(directory)).Message);
    }

    [Fact]
    public void TheTestFileLoadsWithEveryAddedToken()
    {
        var tokenizer = TextTokenizer.Load(TestTokenizer.Write());
        Assert.Equal(0, tokenizer.AddedTokenId("<|endoftext|>"));
        Assert.Equal(1, tokenizer.AddedTokenId("<|padding|>"));
        Assert.True(tokenizer.IsSpecial(0));
        var spaces = tokenizer.AddedTokenId("    ");
        Assert.NotNull(spaces);
        Assert.False(tokenizer.IsSpecial(spaces.Value));
        Assert.Equal([spaces.Value], tokenizer.Encode("    "));
    }

    private static void Mutate(JsonObject root, string mutation)
    {
        var model = root["model"]!.AsObject();
        var vocab = model["vocab"]!.AsObject();
        var merges = model["merges"]!.AsArray();
        switch (mutation)
        {
            case "merge-unknown": merges[0] = "Ġ zzzz"; break;
            case "vocab-duplicate-id": vocab["Ā"] = 2; vocab["ā"] = 2; break;
            case "model-type": model["type"] = "WordPiece"; break;
            case "normalizer": root["normalizer"] = new JsonObject { ["type"] = "Lowercase" }; break;
            case "normalizer-sequence":
                root["normalizer"] = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "NFC" }, new JsonObject { ["type"] = "Strip" }) };
                break;
            case "pre-tokenizer": root["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" }; break;
            case "prefix-space": root["pre_tokenizer"]!["add_prefix_space"] = true; break;
            case "decoder": root["decoder"] = new JsonObject { ["type"] = "WordPiece" }; break;
            case "post-processor": root["post_processor"] = new JsonObject { ["type"] = "TemplateProcessing" }; break;
            case "dropout": model["dropout"] = 0.1; break;
            case "lstrip": root["added_tokens"]![2]!["lstrip"] = true; break;
            case "missing-byte": vocab.Remove("Ġ"); break;
            case "merge-format": merges[0] = "a b c"; break;
            case "truncation": root["truncation"] = new JsonObject { ["max_length"] = 8 }; break;
            case "added-conflict": root["added_tokens"]![0]!["id"] = 7; break;
            default: throw new ArgumentException(mutation);
        }
    }
}
