namespace BlockTransformer.Generators.Parsing;

/// <summary>
/// Upper bounds of spec values: far above every model of the paper (vocabulary 50304, width 2048, 24 layers,
/// 2048-token context), low enough that the emitted code and its constants stay small and cannot overflow, and
/// that a mistyped value is a located error instead of a compiler that runs for hours or out of memory.
/// </summary>
internal static class SpecLimits
{
    public const int MaxSpecChars = 1 << 20;
    public const int MaxVocab = 1 << 22;
    public const int MaxLayers = 256;
    public const int MaxHidden = 1 << 16;
    public const int MaxIntermediate = 1 << 18;
    public const int MaxContext = 1 << 20;
    public const int MaxBlockLength = 64;
    public const int MaxPrefixLength = 64;
    public const int MaxNamespaceChars = 256;
    public const int MaxNamespaceParts = 16;
}
