using System.Text;
using System.Text.Json;

namespace BlockTransformer.Text;

/// <summary>A token the file adds outside BPE, matched in the text before the BPE model sees it.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special);

/// <summary>What a byte-level BPE <c>tokenizer.json</c> says, checked: the loader's only input.</summary>
internal sealed record TokenizerDefinition(
    IReadOnlyDictionary<string, int> Vocab,
    IReadOnlyList<(string Left, string Right)> Merges,
    IReadOnlyList<AddedToken> AddedTokens,
    IReadOnlyList<NormalizationForm> Normalization,
    bool UseRegex);

/// <summary>
/// Reads Hugging Face's <c>tokenizer.json</c> for byte-level BPE (GPT-2, GPT-NeoX / Pythia and the files
/// <c>bt tokenizer-train</c> writes). Anything this loader cannot reproduce exactly — another model type,
/// normalizer, pre-tokenizer, decoder or post-processor, or a flag that changes encoding — is refused with
/// the JSON path that says it, so a file never loads as a silently different tokenizer.
/// </summary>
internal static class TokenizerFile
{
    /// <summary>Most merges and vocabulary entries a file may hold: far above any real tokenizer, low enough that a hostile file cannot make the loader hold gigabytes.</summary>
    public const int MaxEntries = 4_000_000;

    public static TokenizerDefinition Parse(string json, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new TokenizerException($"{source}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {FirstSentence(e.Message)}");
        }

        using (document)
        {
            var reader = new Reader(source);
            var root = reader.Object(document.RootElement, "$");
            var model = reader.Object(reader.Required(root, "model", "$"), "model");
            CheckModel(reader, model);
            var vocab = Vocab(reader, reader.Object(reader.Required(model, "vocab", "model"), "model.vocab"));
            var merges = Merges(reader, reader.Required(model, "merges", "model"), vocab);
            var added = AddedTokens(reader, root, vocab);
            var normalization = Normalizer(reader, root.TryGetProperty("normalizer", out var n) ? n : default, "normalizer");
            var useRegex = PreTokenizer(reader, root);
            CheckByteLevel(reader, root, "decoder", allowNull: false);
            CheckByteLevel(reader, root, "post_processor", allowNull: true);
            foreach (var field in new[] { "truncation", "padding" })
            {
                if (root.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null)
                {
                    throw reader.Error(field, "must be null: truncation and padding change what encoding returns, and this loader does not apply them");
                }
            }

            return new TokenizerDefinition(vocab, merges, added, normalization, useRegex);
        }
    }

    private static void CheckModel(Reader reader, JsonElement model)
    {
        var type = reader.String(reader.Required(model, "type", "model"), "model.type");
        if (type != "BPE")
        {
            throw reader.Error("model.type", $"'{type}' is not supported; this loader reads byte-level BPE models (\"BPE\")");
        }

        reader.MustBeAbsentOrNull(model, "dropout", "model", "BPE dropout samples a different tokenization on every call");
        reader.MustBeAbsentOrFalse(model, "byte_fallback", "model");
        reader.MustBeAbsentOrFalse(model, "ignore_merges", "model");
        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (model.TryGetProperty(affix, out var value) && value.ValueKind != JsonValueKind.Null && !(value.ValueKind == JsonValueKind.String && value.GetString()!.Length == 0))
            {
                throw reader.Error($"model.{affix}", "is not supported (byte-level BPE uses none)");
            }
        }
    }

    private static Dictionary<string, int> Vocab(Reader reader, JsonElement vocab)
    {
        var tokens = new Dictionary<string, int>(StringComparer.Ordinal);
        var owners = new Dictionary<int, string>();
        foreach (var entry in vocab.EnumerateObject())
        {
            var path = $"model.vocab[{Quote(entry.Name)}]";
            var id = reader.Id(entry.Value, path);
            if (!tokens.TryAdd(entry.Name, id))
            {
                throw reader.Error(path, "appears twice");
            }

            if (!owners.TryAdd(id, entry.Name))
            {
                throw reader.Error(path, $"has id {id}, which {Quote(owners[id])} already has");
            }

            if (tokens.Count > MaxEntries)
            {
                throw reader.Error("model.vocab", $"has more than {MaxEntries} entries");
            }
        }

        for (var b = 0; b < 256; b++)
        {
            var c = ByteLevelAlphabet.ToChar((byte)b);
            if (!tokens.ContainsKey(c.ToString()))
            {
                throw reader.Error("model.vocab", $"lacks the byte-level character {Quote(c.ToString())} (byte 0x{b:X2}); a byte-level vocabulary has all 256");
            }
        }

        return tokens;
    }

    /// <summary>Both formats: <c>"a b"</c> strings (older files) and <c>["a", "b"]</c> pairs (newer files).</summary>
    private static List<(string, string)> Merges(Reader reader, JsonElement merges, Dictionary<string, int> vocab)
    {
        if (merges.ValueKind != JsonValueKind.Array)
        {
            throw reader.Error("model.merges", $"must be an array, not {Kind(merges)}");
        }

        var list = new List<(string, string)>();
        var seen = new HashSet<(string, string)>();
        var index = 0;
        foreach (var merge in merges.EnumerateArray())
        {
            var path = $"model.merges[{index++}]";
            (string Left, string Right) pair;
            if (merge.ValueKind == JsonValueKind.String)
            {
                var parts = merge.GetString()!.Split(' ');
                pair = parts.Length == 2 && parts[0].Length > 0 && parts[1].Length > 0 ? (parts[0], parts[1])
                    : throw reader.Error(path, $"{Quote(merge.GetString()!)} must be two tokens separated by one space");
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                pair = (merge[0].GetString()!, merge[1].GetString()!);
            }
            else
            {
                throw reader.Error(path, $"must be a string \"a b\" or a pair [\"a\", \"b\"], not {Kind(merge)}");
            }

            foreach (var token in new[] { pair.Left, pair.Right, pair.Left + pair.Right })
            {
                if (!vocab.ContainsKey(token))
                {
                    throw reader.Error(path, $"names {Quote(token)}, which is not in model.vocab");
                }
            }

            if (pair.Left.Contains(' ') || pair.Right.Contains(' '))
            {
                throw reader.Error(path, "has a token with a space; byte-level tokens spell a space 'Ġ'");
            }

            if (!seen.Add(pair))
            {
                throw reader.Error(path, $"repeats the merge {Quote(pair.Left)} + {Quote(pair.Right)}");
            }

            list.Add(pair);
            if (list.Count > MaxEntries)
            {
                throw reader.Error("model.merges", $"has more than {MaxEntries} entries");
            }
        }

        return list;
    }

    private static List<AddedToken> AddedTokens(Reader reader, JsonElement root, Dictionary<string, int> vocab)
    {
        var list = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var tokens) || tokens.ValueKind == JsonValueKind.Null)
        {
            return list;
        }

        if (tokens.ValueKind != JsonValueKind.Array)
        {
            throw reader.Error("added_tokens", $"must be an array, not {Kind(tokens)}");
        }

        var owners = vocab.ToDictionary(p => p.Value, p => p.Key);
        var ids = new HashSet<int>();
        var contents = new HashSet<string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var token in tokens.EnumerateArray())
        {
            var path = $"added_tokens[{index++}]";
            reader.Object(token, path);
            var id = reader.Id(reader.Required(token, "id", path), path + ".id");
            var content = reader.String(reader.Required(token, "content", path), path + ".content");
            if (content.Length == 0)
            {
                throw reader.Error(path + ".content", "is empty");
            }

            foreach (var flag in new[] { "single_word", "lstrip", "rstrip" })
            {
                reader.MustBeAbsentOrFalse(token, flag, path);
            }

            var special = token.TryGetProperty("special", out var s) && reader.Bool(s, path + ".special");
            if (token.TryGetProperty("normalized", out var normalized))
            {
                reader.Bool(normalized, path + ".normalized");
            }

            if (vocab.TryGetValue(content, out var vocabId) && vocabId != id)
            {
                throw reader.Error(path, $"gives {Quote(content)} id {id}, but model.vocab gives it {vocabId}");
            }

            if (owners.TryGetValue(id, out var owner) && owner != content)
            {
                throw reader.Error(path + ".id", $"{id} is already model.vocab's id of {Quote(owner)}");
            }

            if (!ids.Add(id) || !contents.Add(content))
            {
                throw reader.Error(path, $"repeats an added token (id {id}, {Quote(content)})");
            }

            list.Add(new AddedToken(id, content, special));
        }

        return list;
    }

    /// <summary>Unicode normalization forms, alone or as a Sequence; null means none.</summary>
    private static List<NormalizationForm> Normalizer(Reader reader, JsonElement normalizer, string path)
    {
        if (normalizer.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return [];
        }

        reader.Object(normalizer, path);
        var type = reader.String(reader.Required(normalizer, "type", path), path + ".type");
        switch (type)
        {
            case "NFC": return [NormalizationForm.FormC];
            case "NFD": return [NormalizationForm.FormD];
            case "NFKC": return [NormalizationForm.FormKC];
            case "NFKD": return [NormalizationForm.FormKD];
            case "Sequence":
                var inner = reader.Required(normalizer, "normalizers", path);
                if (inner.ValueKind != JsonValueKind.Array)
                {
                    throw reader.Error(path + ".normalizers", $"must be an array, not {Kind(inner)}");
                }

                return inner.EnumerateArray().SelectMany((n, i) => Normalizer(reader, n, $"{path}.normalizers[{i}]")).ToList();
            default:
                throw reader.Error(path + ".type", $"'{type}' is not supported (supported: NFC, NFD, NFKC, NFKD, or a Sequence of them)");
        }
    }

    /// <summary>GPT-2's ByteLevel pre-tokenizer; returns whether it splits with GPT-2's pattern (use_regex).</summary>
    private static bool PreTokenizer(Reader reader, JsonElement root)
    {
        var pre = reader.Object(reader.Required(root, "pre_tokenizer", "$"), "pre_tokenizer");
        var type = reader.String(reader.Required(pre, "type", "pre_tokenizer"), "pre_tokenizer.type");
        if (type != "ByteLevel")
        {
            throw reader.Error("pre_tokenizer.type", $"'{type}' is not supported; byte-level BPE needs the ByteLevel pre-tokenizer");
        }

        if (pre.TryGetProperty("add_prefix_space", out var prefix) && reader.Bool(prefix, "pre_tokenizer.add_prefix_space"))
        {
            throw reader.Error("pre_tokenizer.add_prefix_space", "true is not supported (GPT-2 and GPT-NeoX files have false)");
        }

        return !pre.TryGetProperty("use_regex", out var regex) || reader.Bool(regex, "pre_tokenizer.use_regex");
    }

    /// <summary>The decoder and post-processor: ByteLevel (whose options only concern offsets) or, where allowed, null.</summary>
    private static void CheckByteLevel(Reader reader, JsonElement root, string field, bool allowNull)
    {
        if (!root.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (!allowNull)
            {
                throw reader.Error(field, "is missing or null; byte-level BPE is decoded by the ByteLevel decoder");
            }

            return;
        }

        reader.Object(value, field);
        var type = reader.String(reader.Required(value, "type", field), field + ".type");
        if (type != "ByteLevel")
        {
            throw reader.Error(field + ".type", $"'{type}' is not supported (only ByteLevel{(allowNull ? " or null" : string.Empty)})");
        }
    }

    private static string Quote(string text) => $"\"{JsonEncodedText.Encode(text, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping)}\"";

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }

    /// <summary>Typed reads that fail with the file name, the JSON path and what was there instead.</summary>
    private sealed class Reader(string source)
    {
        public TokenizerException Error(string path, string problem) => new($"{source}: {path} {problem}.");

        public JsonElement Object(JsonElement element, string path) =>
            element.ValueKind == JsonValueKind.Object ? element : throw Error(path, $"must be an object, not {Kind(element)}");

        public JsonElement Required(JsonElement parent, string name, string path) =>
            parent.TryGetProperty(name, out var value) ? value : throw Error(path == "$" ? name : $"{path}.{name}", "is missing");

        public string String(JsonElement element, string path) =>
            element.ValueKind == JsonValueKind.String ? element.GetString()! : throw Error(path, $"must be a string, not {Kind(element)}");

        public bool Bool(JsonElement element, string path) => element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(path, $"must be true or false, not {Kind(element)}"),
        };

        public int Id(JsonElement element, string path) =>
            element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out var id) && id >= 0 ? id
            : throw Error(path, $"must be a token id (an integer from 0 to {int.MaxValue}), not {(element.ValueKind == JsonValueKind.Number ? element.GetRawText() : Kind(element))}");

        public void MustBeAbsentOrFalse(JsonElement parent, string name, string path)
        {
            if (parent.TryGetProperty(name, out var value) && Bool(value, $"{path}.{name}"))
            {
                throw Error($"{path}.{name}", "true is not supported");
            }
        }

        public void MustBeAbsentOrNull(JsonElement parent, string name, string path, string why)
        {
            if (parent.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                throw Error($"{path}.{name}", $"must be null: {why}");
            }
        }
    }
}
