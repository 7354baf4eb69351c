using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace BlockTransformer.Text;

/// <summary>
/// Trains a byte-level BPE tokenizer and writes it as a <c>tokenizer.json</c> in the GPT-NeoX / Pythia format
/// that <see cref="TextTokenizer"/> and Hugging Face's tokenizers both read: <c>&lt;|endoftext|&gt;</c> at id 0
/// (special), the 256 byte characters at 1..256 in byte order, then one token per merge. The corpus is
/// NFC-normalized and split as the tokenizer will split it (GPT-2's pattern), and each step merges the most
/// frequent adjacent pair (ties: the lower ids), until the vocabulary is full or no pair occurs twice.
/// </summary>
public static class BpeTrainer
{
    public const string EndOfText = "<|endoftext|>";

    /// <summary>The smallest vocabulary: <c>&lt;|endoftext|&gt;</c> and the 256 bytes.</summary>
    public const int MinVocabularySize = 257;

    public static string Train(string corpus, int vocabularySize)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        if (vocabularySize < MinVocabularySize)
        {
            throw new ArgumentException($"a byte-level vocabulary needs at least {MinVocabularySize} tokens (<|endoftext|> and the 256 bytes), got {vocabularySize}.");
        }

        var tokens = new List<string> { EndOfText };
        tokens.AddRange(Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ToChar((byte)b).ToString()));
        var ids = tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
        var words = Words(corpus);
        var merges = new List<(int Left, int Right)>();
        var pairs = new PairCounts(words);
        while (tokens.Count < vocabularySize && pairs.TakeMostFrequent() is { } best)
        {
            var merged = tokens[best.Left] + tokens[best.Right];
            if (!ids.TryGetValue(merged, out var id))
            {
                id = tokens.Count;
                tokens.Add(merged);
                ids.Add(merged, id);
            }

            merges.Add(best);
            pairs.Merge(best, id);
        }

        return Json(tokens, merges);
    }

    /// <summary>Each distinct pre-token of the corpus as its byte ids (1 + byte), with how often it occurs.</summary>
    private static List<Word> Words(string corpus)
    {
        var text = corpus.Normalize(NormalizationForm.FormC);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (offset, length) in new Gpt2PreTokenizer([EndOfText], useRegex: true).PreTokenize(text))
        {
            var piece = text.Substring(offset, length);
            if (piece != EndOfText)
            {
                counts[piece] = counts.GetValueOrDefault(piece) + 1;
            }
        }

        return counts.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => new Word(Encoding.UTF8.GetBytes(p.Key).Select(b => 1 + b).ToList(), p.Value))
            .ToList();
    }

    private static string Json(List<string> tokens, List<(int Left, int Right)> merges)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("version", "1.0");
            json.WriteNull("truncation");
            json.WriteNull("padding");
            json.WriteStartArray("added_tokens");
            json.WriteStartObject();
            json.WriteNumber("id", 0);
            json.WriteString("content", EndOfText);
            foreach (var flag in new[] { "single_word", "lstrip", "rstrip", "normalized" })
            {
                json.WriteBoolean(flag, false);
            }

            json.WriteBoolean("special", true);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteStartObject("normalizer");
            json.WriteString("type", "NFC");
            json.WriteEndObject();
            foreach (var part in new[] { "pre_tokenizer", "post_processor", "decoder" })
            {
                json.WriteStartObject(part);
                json.WriteString("type", "ByteLevel");
                json.WriteBoolean("add_prefix_space", false);
                json.WriteBoolean("trim_offsets", true);
                json.WriteBoolean("use_regex", true);
                json.WriteEndObject();
            }

            json.WriteStartObject("model");
            json.WriteString("type", "BPE");
            json.WriteNull("dropout");
            json.WriteNull("unk_token");
            json.WriteNull("continuing_subword_prefix");
            json.WriteNull("end_of_word_suffix");
            json.WriteBoolean("fuse_unk", false);
            json.WriteBoolean("byte_fallback", false);
            json.WriteStartObject("vocab");
            for (var id = 0; id < tokens.Count; id++)
            {
                json.WriteNumber(tokens[id], id);
            }

            json.WriteEndObject();
            json.WriteStartArray("merges");
            foreach (var (left, right) in merges)
            {
                json.WriteStartArray();
                json.WriteStringValue(tokens[left]);
                json.WriteStringValue(tokens[right]);
                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private sealed record Word(List<int> Symbols, int Count);

    /// <summary>
    /// Counts of adjacent pairs over all words, the words each pair occurs in, and a queue of candidates (stale
    /// entries are skipped when taken), so a merge touches only the words that contain its pair.
    /// </summary>
    private sealed class PairCounts
    {
        private readonly List<Word> words;
        private readonly Dictionary<(int, int), long> counts = [];
        private readonly Dictionary<(int, int), HashSet<int>> where = [];
        private readonly PriorityQueue<(int Left, int Right), (long Count, int Left, int Right)> queue =
            new(Comparer<(long Count, int Left, int Right)>.Create((a, b) => a.Count != b.Count ? b.Count.CompareTo(a.Count) : (a.Left, a.Right).CompareTo((b.Left, b.Right))));

        public PairCounts(List<Word> words)
        {
            this.words = words;
            for (var w = 0; w < words.Count; w++)
            {
                Add(w, +1);
            }

            foreach (var (pair, count) in counts)
            {
                queue.Enqueue(pair, (count, pair.Item1, pair.Item2));
            }
        }

        /// <summary>The most frequent pair that occurs at least twice, or null.</summary>
        public (int Left, int Right)? TakeMostFrequent()
        {
            while (queue.TryDequeue(out var pair, out var priority))
            {
                if (counts.GetValueOrDefault(pair) == priority.Count)
                {
                    return priority.Count >= 2 ? pair : null;
                }
            }

            return null;
        }

        public void Merge((int Left, int Right) pair, int id)
        {
            var changed = new HashSet<(int, int)>();
            foreach (var w in where[pair].ToList())
            {
                var symbols = words[w].Symbols;
                Add(w, -1, changed);
                for (var i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == pair.Left && symbols[i + 1] == pair.Right)
                    {
                        symbols[i] = id;
                        symbols.RemoveAt(i + 1);
                    }
                }

                Add(w, +1, changed);
            }

            foreach (var changedPair in changed)
            {
                if (counts.GetValueOrDefault(changedPair) is var count and > 0)
                {
                    queue.Enqueue(changedPair, (count, changedPair.Item1, changedPair.Item2));
                }
            }
        }

        /// <summary>Adds (or with <paramref name="sign"/> −1 removes) one word's pairs, times its count.</summary>
        private void Add(int w, int sign, HashSet<(int, int)>? changed = null)
        {
            var (symbols, count) = words[w];
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                var pair = (symbols[i], symbols[i + 1]);
                counts[pair] = counts.GetValueOrDefault(pair) + (sign * (long)count);
                changed?.Add(pair);
                if (sign > 0)
                {
                    (where.TryGetValue(pair, out var set) ? set : where[pair] = []).Add(w);
                }
            }
        }
    }
}
