using Xunit.Abstractions;

namespace BlockTransformer.Tests.Generator;

/// <summary>
/// Seeded mutations of valid specs through the real generator: whatever a user writes is a model or BT errors
/// located inside the file, never an internal error (BT0099) or an exception. BT_FUZZ_SEED replays a run;
/// BT_FUZZ_CASES runs a longer campaign.
/// </summary>
public class SpecFuzzTests(ITestOutputHelper output)
{
    private static readonly string[] Seeds =
    [
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Specs", "tiny_block.json")),
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Specs", "tiny_vanilla_mqa.json")),
    ];

    /// <summary>Tokens that make specs wrong in the ways the fuzz campaign found: huge and odd numbers, nesting, names.</summary>
    private static readonly string[] Pieces =
    [
        "2147483647", "4294967296", "-1", "0", "1e999", "1.5", "\u0661", "[[[[", "]]]]", "{", "}", "\"", ",", ":", "null", "true",
        "\"namespace\": \"A b\",", "\"namespace\": \"class\",", "\"name\": \"x-y\",", "\"kv_heads\": 7,", "\"rotary_pct\": 0.3,", "//", "/*",
        "\"layers\": 100000,", "\"hidden\": 2147483647,", "\"max_context\": 2147483647,", "\"prefix_length\": 2147483647,",
    ];

    [Fact]
    public void MutatedSpecsAreModelsOrLocatedErrors()
    {
        var runSeed = int.TryParse(Environment.GetEnvironmentVariable("BT_FUZZ_SEED"), out var given) ? given : Environment.TickCount;
        var models = 0;
        var cases = int.TryParse(Environment.GetEnvironmentVariable("BT_FUZZ_CASES"), out var more) ? more : 600;
        for (var i = 0; i < cases; i++)
        {
            var seed = HashCode.Combine(runSeed, i);
            var random = new Random(seed);
            var text = Seeds[random.Next(Seeds.Length)];
            for (var m = random.Next(1, 4); m > 0; m--)
            {
                var at = random.Next(text.Length + 1);
                text = random.Next(3) switch
                {
                    0 => text.Insert(at, Pieces[random.Next(Pieces.Length)]),
                    1 => text.Remove(at, Math.Min(random.Next(1, 6), text.Length - at)),
                    _ => ReplaceNumber(text, random),
                };
            }

            var (result, _) = GeneratorHarness.Run(("/specs/fuzz.json", text));
            var context = $"case seed {seed} (BT_FUZZ_SEED={runSeed}, case {i})";
            Assert.True(result.Exception is null, $"{context}: {result.Exception}");
            Assert.All(result.Diagnostics, d =>
            {
                Assert.True(d.Id != "BT0099", $"{context}: {d}");
                Assert.True(d.Location.SourceSpan.End <= text.Length, $"{context}: {d} ends past the file");
            });
            models += result.Diagnostics.IsEmpty ? 1 : 0;
        }

        output.WriteLine($"BT_FUZZ_SEED={runSeed}: {cases} mutated specs, {models} valid models, {cases - models} with located BT errors, 0 BT0099, 0 exceptions");
        Assert.True(models > 0, $"BT_FUZZ_SEED={runSeed}: no mutation left a valid model; the fuzzer should make both kinds");
    }

    /// <summary>Replaces one number of the spec with an extreme one.</summary>
    private static string ReplaceNumber(string text, Random random)
    {
        var digits = Enumerable.Range(0, text.Length).Where(i => char.IsAsciiDigit(text[i]) && (i == 0 || !char.IsAsciiDigit(text[i - 1]))).ToList();
        if (digits.Count == 0)
        {
            return text;
        }

        var start = digits[random.Next(digits.Count)];
        var end = start;
        while (end < text.Length && (char.IsAsciiDigit(text[end]) || text[end] == '.'))
        {
            end++;
        }

        string[] values = ["0", "1", "3", "7", "1024", "65536", "1048577", "2147483647", "99999999999", "0.0001"];
        return text[..start] + values[random.Next(values.Length)] + text[end..];
    }
}
