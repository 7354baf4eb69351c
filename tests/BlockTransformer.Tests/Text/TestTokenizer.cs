using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace BlockTransformer.Tests;

/// <summary>
/// A small byte-level BPE tokenizer.json in the GPT-NeoX / Pythia format, made by the tests: <c>&lt;|endoftext|&gt;</c>
/// (0) and <c>&lt;|padding|&gt;</c> (1) special, the 256 byte characters, merges learned from a short corpus by a
/// plain BPE trainer, and, as in NeoX's ids 50254-50276, runs of 2-8 spaces as non-special added tokens
/// (shortest first, so matching them in file order instead of longest-first gives other ids).
/// </summary>
internal static partial class TestTokenizer
{
    public const string Corpus = """
        In the beginning God created the heaven and the earth. And the earth was without form, and void; and
        darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.
        And God said, Let there be light: and there was light. It's what they'll say: we're sure you've seen
        I'm here and he'd go. Ünïcödé wörds, naïve café, résumé; 東京 and 北京; 𝒳𝒴 letters and 𝟎𝟏 digits;
        emoji 😀👍🏽👨‍👩‍👧 and numbers 1234567890 3.14159 2024-12-08.
            indented    lines	with	tabs
        """;

    public const int FirstSpaceRun = 2;
    public const int LastSpaceRun = 8;

    /// <summary>GPT-2's split pattern, used only to count pairs for training: the merges are data, any reasonable split will do.</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex TrainingSplit();

    /// <summary>The file's text; <paramref name="mergesAsPairs"/> writes merges as ["a","b"] instead of "a b".</summary>
    public static string Json(bool mergesAsPairs = false, int merges = 200, Action<JsonObject>? edit = null)
    {
        var vocab = new JsonObject { ["<|endoftext|>"] = 0, ["<|padding|>"] = 1 };
        var alphabet = ByteAlphabet();
        var next = 2;
        foreach (var c in alphabet)
        {
            vocab[c.ToString()] = next++;
        }

        var merged = new JsonArray();
        foreach (var (left, right) in Train(alphabet, merges))
        {
            if (!vocab.ContainsKey(left + right))
            {
                vocab[left + right] = next++;
            }

            merged.Add(mergesAsPairs ? new JsonArray(left, right) : (JsonNode)$"{left} {right}");
        }

        var added = new JsonArray
        {
            Added(0, "<|endoftext|>", special: true),
            Added(1, "<|padding|>", special: true),
        };
        for (var n = FirstSpaceRun; n <= LastSpaceRun; n++)
        {
            added.Add(Added(next++, new string(' ', n), special: false));
        }

        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = ByteLevel(),
            ["post_processor"] = ByteLevel(),
            ["decoder"] = ByteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = merged,
            },
        };
        edit?.Invoke(root);
        return root.ToJsonString();
    }

    /// <summary>Writes the file into a directory of its own under the temp folder; returns its path.</summary>
    public static string Write(bool mergesAsPairs = false, Action<JsonObject>? edit = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "bt-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "tokenizer.json");
        File.WriteAllText(path, Json(mergesAsPairs, edit: edit));
        return path;
    }

    private static JsonObject ByteLevel() => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };

    private static JsonObject Added(int id, string content, bool special) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = false,
        ["rstrip"] = false,
        ["normalized"] = !special,
        ["special"] = special,
    };

    /// <summary>GPT-2's bytes_to_unicode, written out independently of the loader's table.</summary>
    private static char[] ByteAlphabet()
    {
        var visible = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var extra = 0;
        return Enumerable.Range(0, 256).Select(b => (char)(visible.Contains(b) ? b : 256 + extra++)).ToArray();
    }

    /// <summary>Plain BPE: merge the most frequent adjacent pair (ties: ordinal order) <paramref name="count"/> times.</summary>
    private static List<(string, string)> Train(char[] alphabet, int count)
    {
        var words = TrainingSplit().Matches(Corpus.Normalize(NormalizationForm.FormC))
            .Select(m => Encoding.UTF8.GetBytes(m.Value).Select(b => alphabet[b].ToString()).ToList())
            .ToList();
        var merges = new List<(string, string)>();
        for (var k = 0; k < count; k++)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var word in words)
            {
                for (var i = 0; i + 1 < word.Count; i++)
                {
                    pairs[(word[i], word[i + 1])] = pairs.GetValueOrDefault((word[i], word[i + 1])) + 1;
                }
            }

            if (pairs.Count == 0)
            {
                break;
            }

            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add(best);
            foreach (var word in words)
            {
                for (var i = 0; i + 1 < word.Count; i++)
                {
                    if (word[i] == best.Item1 && word[i + 1] == best.Item2)
                    {
                        word[i] += word[i + 1];
                        word.RemoveAt(i + 1);
                    }
                }
            }
        }

        return merges;
    }

    /// <summary>Random strings made of the pieces that tokenizers get wrong, each seed giving one string.</summary>
    public static string RandomText(Random random)
    {
        string[] pieces =
        [
            "the", " the", "The", "God", " said", "light", "heaven", "earth", "in", "ing", "and", " and",
            "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "I'LL", "don't", "it's", "'", "''",
            " ", "  ", "   ", "    ", "     ", "         ", "\t", "\t\t", "\n", "\r\n", "\n\n", " \n", "\u00A0", "\u3000", "\u2028", "\u0085",
            "0", "7", "42", "1234", "3.14", "٣", "½", "Ⅻ", "𝟎𝟏",
            "é", "e\u0301", "A\u030A", "n\u0303", "\u0301", "ﬁ", "Ω", "東京", "北京", "한국어", "ᄀ\u1161", "𝒳", "𝒳y", "𠀀",
            "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️",
            ".", ",", ";", "!?", "...", "--", "(", ")", "\"", "#", "$", "%", "@", "`",
            "<|endoftext|>", "<|padding|>", "<|endoftext", "|>", "<", "<|", "\u0000", "\u007F", "\u00AD",
        ];
        var text = new StringBuilder();
        var count = random.Next(0, 12);
        for (var i = 0; i < count; i++)
        {
            text.Append(random.Next(4) == 0 ? (char)random.Next(0x20, 0x250) : pieces[random.Next(pieces.Length)]);
        }

        return text.ToString();
    }
}
