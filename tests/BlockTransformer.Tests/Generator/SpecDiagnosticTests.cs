using Microsoft.CodeAnalysis;

namespace BlockTransformer.Tests.Generator;

/// <summary>
/// Bad specs become BT errors at the right line and column. Each spec marks the expected position with
/// a /*^*/ comment right before the offending token; the expected line and column are computed from it.
/// </summary>
public class SpecDiagnosticTests
{
    private const string Marker = "/*^*/";

    private const string Vanilla = """
        {
          "name": "v",
          "kind": "vanilla",
          "vocab_size": 10,
          "decoder": { "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_context": 16 }
        }
        """;

    private const string Block = """
        {
          "name": "b",
          "kind": "block",
          "vocab_size": 10,
          "block_length": 4,
          "prefix_length": 2,
          "block_decoder": { "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_context": 16 },
          "token_decoder": { "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_context": 5 }
        }
        """;

    public static TheoryData<string, string, string> BadSpecs => new()
    {
        { "BT0001", Vanilla.Replace("\"kind\": \"vanilla\",", "\"kind\": \"vanilla\", /*^*/]"), "Malformed JSON" },
        { "BT0001", "{ \"name\": \"v\", \"kind\": /*^*/\"vanilla", "unterminated string" },
        { "BT0002", Marker + Vanilla.Replace("\"vocab_size\": 10,", string.Empty), "'vocab_size'" },
        { "BT0003", Vanilla.Replace("\"vocab_size\"", Marker + "\"vocab_sise\""), "Did you mean 'vocab_size'" },
        { "BT0004", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": /*^*/\"ten\""), "whole number" },
        { "BT0004", Vanilla.Replace("\"layers\": 1", "\"layers\": /*^*/1.5"), "whole number" },
        { "BT0005", Vanilla.Replace("\"layers\": 1", "\"layers\": /*^*/-2"), "at least 1" },
        { "BT0006", Vanilla.Replace("\"kind\": \"vanilla\"", "\"kind\": /*^*/\"encoder\""), "\"block\", \"vanilla\"" },
        { "BT0006", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"kv_cache_dtype\": /*^*/\"f16\""), "\"f32\", \"bf16\"" },
        { "BT0007", Vanilla.Replace("\"heads\": 2", "\"heads\": /*^*/5"), "divisible by heads (5)" },
        { "BT0008", Vanilla.Replace("\"heads\": 2", "\"heads\": 4, \"kv_heads\": /*^*/3"), "divisible by kv_heads (3)" },
        { "BT0009", Block.Replace("\"block_length\": 4", "\"block_length\": /*^*/3"), "divisible by block_length (3)" },
        { "BT0010", Vanilla.Replace("\"heads\": 2", "\"heads\": 2, \"rotary_pct\": /*^*/0.1875"), "is odd" },
        { "BT0012", Vanilla.Replace("\"name\": \"v\"", "\"name\": /*^*/\"9lives\""), "C# type name" },
        { "BT0013", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"compute_dtype\": /*^*/\"bf16\""), "write \"f32\"" },
        { "BT0014", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, /*^*/\"block_length\": 4"), "only for kind \"block\"" },
        { "BT0015", Block.Replace("\"max_context\": 5", "\"max_context\": /*^*/3"), "at least prefix_length + block_length - 1 = 5" },
        { "BT0016", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"eos_id\": /*^*/10"), "0 to 9" },
        { "BT0017", Vanilla.Replace("\"kind\": \"vanilla\",", "\"kind\": \"vanilla\", /*^*/\"kind\": \"vanilla\","), "appears twice" },
        { "BT0004", Vanilla.Replace("\"decoder\": {", "\"decoder\": /*^*/[], \"x_decoder\": {"), "must be an object" },
        // Hostile input: bounded depth, ASCII digits, bounded numbers, namespaces that compile, matrices that fit.
        { "BT0001", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": " + new string('[', 31) + "/*^*/" + new string('[', 60_000) + new string(']', 60_031)), "nested deeper than 32 levels" },
        { "BT0001", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": /*^*/\u0661\u0660\u0661"), "a value was expected" },
        { "BT0001", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": /*^*/1e999"), "out of range" },
        { "BT0005", Vanilla.Replace("\"layers\": 1", "\"layers\": /*^*/100000"), "at most 256" },
        { "BT0005", Vanilla.Replace("\"layers\": 1", "\"layers\": /*^*/2147483647"), "at most 256" },
        { "BT0005", Vanilla.Replace("\"hidden\": 32", "\"hidden\": /*^*/2147483647"), "at most 65536" },
        { "BT0005", Vanilla.Replace("\"max_context\": 16", "\"max_context\": /*^*/2147483647"), "at most 1048576" },
        { "BT0005", Vanilla.Replace("\"intermediate\": 64", "\"intermediate\": /*^*/2147483647"), "at most 262144" },
        { "BT0005", Block.Replace("\"prefix_length\": 2", "\"prefix_length\": /*^*/2147483647"), "at most 64" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"A b\""), "'A b' is not an identifier" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"x-y\""), "'x-y' is not an identifier" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"My.namespace\""), "'namespace' is a C# keyword" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"global::A\""), "is not an identifier" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"A\\nB\""), "is not an identifier" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"" + string.Join('.', Enumerable.Repeat("N", 2000)) + "\""), "more than 256" },
        { "BT0019", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": 10, \"namespace\": /*^*/\"A..B\""), "empty part" },
        { "BT0020", Vanilla.Replace("\"vocab_size\": 10", "\"vocab_size\": /*^*/4000000").Replace("\"hidden\": 32", "\"hidden\": 4096"), "embed_out (vocab_size × hidden) would hold 16384000000 weights" },
        { "BT0020", Vanilla.Replace("\"intermediate\": 64", "\"intermediate\": /*^*/262144").Replace("\"hidden\": 32", "\"hidden\": 16384"), "MLP (hidden × intermediate)" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void BadSpecIsALocatedErrorAndEmitsNoModel(string id, string spec, string messageFragment)
    {
        var (line, column) = ExpectedPosition(spec);
        var (result, _) = GeneratorHarness.Run(("/specs/bad.json", spec));

        Assert.Null(result.Exception);
        var diagnostic = result.Diagnostics.FirstOrDefault(d => d.Id == id);
        Assert.True(diagnostic is not null, $"expected {id}, got: {string.Join("; ", result.Diagnostics)}");
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        var span = diagnostic.Location.GetLineSpan();
        Assert.Equal("/specs/bad.json", span.Path);
        Assert.Equal((line, column), (span.StartLinePosition.Line, span.StartLinePosition.Character));
        Assert.Contains(messageFragment, diagnostic.GetMessage());
        Assert.Equal(["CompiledModels.g.cs"], result.GeneratedSources.Select(s => s.HintName));
    }

    [Fact]
    public void DuplicateModelNamesAreReportedAtTheSecondSpecsName()
    {
        var second = Vanilla.Replace("\"name\": \"v\"", "\"name\": /*^*/\"v\"");
        var (line, column) = ExpectedPosition(second);
        var (result, _) = GeneratorHarness.Run(("/specs/a.json", Vanilla), ("/specs/b.json", second));
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal("BT0011", diagnostic.Id);
        Assert.Equal("/specs/b.json", diagnostic.Location.GetLineSpan().Path);
        Assert.Equal((line, column), (diagnostic.Location.GetLineSpan().StartLinePosition.Line, diagnostic.Location.GetLineSpan().StartLinePosition.Character));
        Assert.Equal(2, result.GeneratedSources.Length); // the first model and the catalog
    }

    [Fact]
    public void UnknownKeyInADecoderSuggestsTheClosestKey()
    {
        var (result, _) = GeneratorHarness.Run(("/specs/bad.json", Block.Replace("\"intermediate\": 64, \"max_context\": 5", "\"intermediat\": 64, \"max_context\": 5")));
        Assert.Contains(result.Diagnostics, d => d.Id == "BT0003" && d.GetMessage().Contains("Did you mean 'intermediate'"));
        Assert.Contains(result.Diagnostics, d => d.Id == "BT0002" && d.GetMessage().Contains("token_decoder.intermediate"));
    }

    /// <summary>Every prefix of a valid spec (a file being typed) gives BT errors, never an exception.</summary>
    [Fact]
    public void TruncatedAndGarbledSpecsNeverThrow()
    {
        var inputs = Enumerable.Range(0, Block.Length).Where(n => n % 3 == 0).Select(n => Block[..n])
            .Concat(["", "null", "[1,2]", "\"text\"", "{\"name\": 1e999}", "{\"vocab_size\": 99999999999}", "\u0000\u0001", "{\"a\":\"\\u12\"}", "{/* open"]);
        foreach (var text in inputs)
        {
            var (result, _) = GeneratorHarness.Run(("/specs/bad.json", text));
            Assert.Null(result.Exception);
            Assert.NotEmpty(result.Diagnostics);
            Assert.All(result.Diagnostics, d => Assert.StartsWith("BT00", d.Id));
            Assert.DoesNotContain(result.Diagnostics, d => d.Id == "BT0099");
        }
    }

    [Fact]
    public void AnOversizedSpecIsRefusedWithoutReadingIt()
    {
        var (result, _) = GeneratorHarness.Run(("/specs/big.json", Vanilla + new string(' ', 1 << 20)));
        Assert.Contains(result.Diagnostics, d => d.Id == "BT0018" && d.GetMessage().Contains("at most 1048576 are read"));
    }

    /// <summary>Every cut of a valid spec is a located error whose span lies inside the file (a span at the end of the file has length 0).</summary>
    [Fact]
    public void TruncatedSpecsAreErrorsInsideTheFile()
    {
        for (var length = 0; length < Block.Length; length++)
        {
            var text = Block[..length];
            var (result, _) = GeneratorHarness.Run(("/specs/cut.json", text));
            Assert.NotEmpty(result.Diagnostics);
            Assert.All(result.Diagnostics, d =>
            {
                Assert.NotEqual("BT0099", d.Id);
                Assert.True(d.Location.SourceSpan.End <= text.Length, $"cut at {length}: {d} ends at {d.Location.SourceSpan.End}");
            });
        }
    }

    private static (int Line, int Column) ExpectedPosition(string spec)
    {
        var index = spec.IndexOf(Marker, StringComparison.Ordinal) + Marker.Length;
        var before = spec[..index];
        var line = before.Count(c => c == '\n');
        return (line, index - (before.LastIndexOf('\n') + 1));
    }
}
