using System.Text;
using BenchmarkDotNet.Attributes;
using BlockTransformer.Tests;
using BlockTransformer.Text;

namespace BlockTransformer.Benchmarks;

/// <summary>A text to encode: its UTF-8 bytes are the work, so the GB/s column is the tokenizer's speed.</summary>
public sealed record TokenizerCase(string Name, string Text) : IWorkload
{
    public Work For(string benchmarkMethod) => new(0, Encoding.UTF8.GetByteCount(Text));

    public override string ToString() => $"{Name} {Encoding.UTF8.GetByteCount(Text) / 1e6:F1} MB";
}

/// <summary>
/// Encoding speed of a byte-level BPE <c>tokenizer.json</c> through <see cref="TextTokenizer"/> on one thread:
/// the tests' tokenizer (GPT-NeoX format, a few hundred merges, so more tokens per byte than a 50k vocabulary) on
/// English prose, as one string.
/// </summary>
[Config(typeof(WorkloadConfig))]
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private TextTokenizer tokenizer = null!;

    [ParamsSource(nameof(Cases))]
    public TokenizerCase Case { get; set; } = null!;

    /// <summary>
    /// Real English prose that every Debian machine has: the licence texts of /usr/share/common-licenses (about
    /// 0.3 MB, each file once, so most words are not the previous paragraph's again); the tests' corpus elsewhere.
    /// </summary>
    public static IEnumerable<TokenizerCase> Cases()
    {
        const string Licenses = "/usr/share/common-licenses";
        var files = Directory.Exists(Licenses) ? Directory.GetFiles(Licenses).Where(f => new FileInfo(f).LinkTarget is null).Order().ToArray() : [];
        yield return files.Length > 0
            ? new TokenizerCase("licences", string.Concat(files.Select(File.ReadAllText)))
            : new TokenizerCase("corpus", TestTokenizer.Corpus);
    }

    [GlobalSetup]
    public void Setup() => tokenizer = TextTokenizer.Parse(TestTokenizer.Json());

    [Benchmark]
    public int Encode() => tokenizer.Encode(Case.Text).Length;
}
