namespace BlockTransformer.Cli;

/// <summary>
/// The paper's Table 1 throughput (brief §6.1: generated tokens per second on one H100, bf16, each model at
/// the largest batch that fits) for the models in models/ that it lists, so that `bt bench --pair` can print
/// the paper's ratio for the same two models next to the measured one. The _bf16 variants (bf16 weights in
/// memory) and the _kv_bf16 ones (bf16 KV cache, the paper's dtype) are the same models and share their figures.
/// </summary>
internal static class PaperTable
{
    private static readonly Dictionary<string, (double PrefillHeavy, double DecodeHeavy)> TokensPerSecond = new(StringComparer.Ordinal)
    {
        ["vanilla_31"] = (10_800, 41_600),
        ["vanilla_70"] = (6_900, 19_100),
        ["vanilla_160"] = (2_300, 6_200),
        ["vanilla_410"] = (800, 2_100),
        ["block_main_b4_5"] = (272_300, 809_500),
        ["block_main_b4_19"] = (175_300, 421_400),
        ["block_main_b4_85"] = (59_000, 134_700),
        ["block_main_b4_300"] = (21_000, 44_100),
        ["block_main_b4_800"] = (19_800, 42_500),
        ["block_main_b4_1.2b"] = (12_400, 25_700),
    };

    /// <summary>The paper's throughput of <paramref name="first"/> over <paramref name="second"/>, when it lists both and the setting is one of its two.</summary>
    public static double? Ratio(string first, string second, BenchSetting setting) =>
        !TokensPerSecond.TryGetValue(Base(first), out var a) || !TokensPerSecond.TryGetValue(Base(second), out var b) ? null
        : setting.SameLengths(BenchSetting.PrefillHeavy) ? a.PrefillHeavy / b.PrefillHeavy
        : setting.SameLengths(BenchSetting.DecodeHeavy) ? a.DecodeHeavy / b.DecodeHeavy
        : null;

    /// <summary>Variant suffixes, longest first: "_kv_bf16" also ends in "_bf16".</summary>
    private static readonly string[] DTypeSuffixes = ["_kv_bf16", "_bf16"];

    private static string Base(string model) =>
        DTypeSuffixes.FirstOrDefault(suffix => model.EndsWith(suffix, StringComparison.Ordinal)) is { } suffix ? model[..^suffix.Length] : model;
}
