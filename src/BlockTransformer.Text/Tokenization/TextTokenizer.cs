using System.Text;
using Microsoft.ML.Tokenizers;

namespace BlockTransformer.Text;

/// <summary>
/// A Hugging Face byte-level BPE <c>tokenizer.json</c> (GPT-2, GPT-NeoX / Pythia) as a Microsoft.ML.Tokenizers
/// <see cref="BpeTokenizer"/>, with the file's added tokens, normalizer and pre-tokenizer, producing the ids the
/// Hugging Face tokenizers library produces for the same file. Decoding maps ids back to bytes
/// (<see cref="TokenBytes"/>), so text can also be decoded incrementally (<see cref="StreamingDecoder"/>).
/// Thread-safe: encoding and decoding keep no state between calls.
/// </summary>
public sealed class TextTokenizer
{
    private readonly BpeTokenizer bpe;
    private readonly byte[]?[] bytesById;
    private readonly Dictionary<string, int> addedTokens;
    private readonly HashSet<int> specialIds = [];

    private TextTokenizer(TokenizerDefinition definition, string source)
    {
        Source = source;
        addedTokens = definition.AddedTokens.ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);
        var options = new BpeOptions(definition.Vocab)
        {
            Merges = definition.Merges.Select(m => $"{m.Left} {m.Right}"),
            ByteLevel = true,
            SpecialTokens = addedTokens,
            PreTokenizer = new Gpt2PreTokenizer(addedTokens.Keys, definition.UseRegex),
            Normalizer = definition.Normalization.Count == 0 ? null : new UnicodeNormalizer(definition.Normalization, source),
        };
        bpe = BpeTokenizer.Create(options);

        VocabularySize = Math.Max(definition.Vocab.Values.Max(), definition.AddedTokens.Select(t => t.Id).DefaultIfEmpty(0).Max()) + 1;
        bytesById = new byte[]?[VocabularySize];
        var scratch = new List<byte>();
        foreach (var (token, id) in definition.Vocab)
        {
            scratch.Clear();
            ByteLevelAlphabet.AppendBytes(token, scratch);
            bytesById[id] = scratch.ToArray();
        }

        foreach (var added in definition.AddedTokens)
        {
            scratch.Clear();
            ByteLevelAlphabet.AppendBytes(added.Content, scratch);
            bytesById[added.Id] = scratch.ToArray();
            if (added.Special)
            {
                specialIds.Add(added.Id);
            }
        }
    }

    /// <summary>Where the tokenizer came from (a path), for messages.</summary>
    public string Source { get; }

    /// <summary>One more than the highest id: the rows a model's embedding needs at least.</summary>
    public int VocabularySize { get; }

    /// <summary>The Microsoft.ML.Tokenizers object that encodes, for callers that want its richer API (offsets, counts).</summary>
    public Tokenizer Tokenizer => bpe;

    /// <summary>Loads a <c>tokenizer.json</c>; every problem is a <see cref="TokenizerException"/> naming the file and the JSON path.</summary>
    public static TextTokenizer Load(string path)
    {
        if (Directory.Exists(path))
        {
            throw new TokenizerException($"{path} is a directory; give the tokenizer.json file inside it.");
        }

        string json;
        try
        {
            json = ReadUtf8(path);
        }
        catch (DecoderFallbackException)
        {
            throw new TokenizerException($"{path}: not valid UTF-8, so not a tokenizer.json.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerException($"{path}: cannot be read: {e.Message}");
        }

        return Parse(json, path);
    }

    /// <summary>
    /// A file's text decoded strictly as UTF-8 (without its UTF-8 byte-order mark, if any); invalid bytes throw
    /// <see cref="DecoderFallbackException"/>. Unlike File.ReadAllText, a UTF-16 byte-order mark is not obeyed.
    /// </summary>
    public static string ReadUtf8(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var start = bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, start, bytes.Length - start);
    }

    /// <summary>Reads the text of a <c>tokenizer.json</c>; <paramref name="source"/> names it in messages.</summary>
    public static TextTokenizer Parse(string json, string source = "tokenizer.json") => new(TokenizerFile.Parse(json, source), source);

    /// <summary>The id of an added token (such as <c>&lt;|endoftext|&gt;</c>), if the file has it.</summary>
    public int? AddedTokenId(string content) => addedTokens.TryGetValue(content, out var id) ? id : null;

    public bool IsSpecial(int id) => specialIds.Contains(id);

    /// <summary>
    /// Token ids of <paramref name="text"/>, with no BOS or EOS added (the files this reads add none). Added tokens
    /// in the text, <c>&lt;|endoftext|&gt;</c> included, become their ids, as in Hugging Face's <c>encode</c>.
    /// </summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. bpe.EncodeToIds(WellFormed(text))];
    }

    /// <summary>
    /// Text of <paramref name="ids"/>: their bytes as UTF-8, with U+FFFD for bytes that do not form a character.
    /// Ids the tokenizer does not have (a model's vocabulary is often padded past the tokenizer's: 50304 rows for
    /// NeoX's 50277 tokens) add nothing, as in Hugging Face's decode; <see cref="Contains"/> tells them apart.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            bytes.AddRange(TokenBytes(id));
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Whether <paramref name="id"/> is one of the tokenizer's ids.</summary>
    public bool Contains(int id) => (uint)id < (uint)bytesById.Length && bytesById[id] is not null;

    /// <summary>The bytes token <paramref name="id"/> stands for (a byte-level token can be part of a UTF-8 character); empty for an id the tokenizer lacks.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => Contains(id) ? bytesById[id]! : [];

    /// <summary>A decoder for one stream of ids that emits only whole characters (see <see cref="StreamingDecoder"/>).</summary>
    public StreamingDecoder CreateStreamingDecoder() => new(this);

    /// <summary>
    /// Lone surrogates become U+FFFD, as they do when text reaches a UTF-8 tokenizer: normalization throws on
    /// them, and the byte-level model could not spell them.
    /// </summary>
    private static string WellFormed(string text)
    {
        foreach (var c in text)
        {
            if (char.IsSurrogate(c))
            {
                return Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)); // pairs survive, lone halves become U+FFFD
            }
        }

        return text;
    }
}
