using System.Collections.Generic;
using Microsoft.CodeAnalysis;

namespace BlockTransformer.Generators;

/// <summary>Every diagnostic the spec compiler reports. All are errors: a bad spec emits no code.</summary>
internal static class SpecDiagnostics
{
    public const string MalformedJson = "BT0001";
    public const string MissingField = "BT0002";
    public const string UnknownField = "BT0003";
    public const string WrongType = "BT0004";
    public const string OutOfRange = "BT0005";
    public const string UnknownValue = "BT0006";
    public const string HeadsDoNotDivideHidden = "BT0007";
    public const string KvHeadsDoNotDivideHeads = "BT0008";
    public const string BlockLengthDoesNotDivideHidden = "BT0009";
    public const string BadRotaryDims = "BT0010";
    public const string DuplicateName = "BT0011";
    public const string BadName = "BT0012";
    public const string Unsupported = "BT0013";
    public const string FieldNotForKind = "BT0014";
    public const string ContextTooShort = "BT0015";
    public const string TokenIdOutOfVocab = "BT0016";
    public const string DuplicateField = "BT0017";
    public const string SpecTooLarge = "BT0018";
    public const string BadNamespace = "BT0019";
    public const string ModelTooLarge = "BT0020";
    public const string GeneratorFailure = "BT0099";

    private static readonly Dictionary<string, DiagnosticDescriptor> ById = Create(
        (MalformedJson, "Spec file is not valid JSON"),
        (MissingField, "Required spec field is missing"),
        (UnknownField, "Unknown spec field"),
        (WrongType, "Spec field has the wrong type"),
        (OutOfRange, "Spec value is out of range"),
        (UnknownValue, "Spec value is not one of the allowed values"),
        (HeadsDoNotDivideHidden, "hidden is not divisible by heads"),
        (KvHeadsDoNotDivideHeads, "heads is not divisible by kv_heads"),
        (BlockLengthDoesNotDivideHidden, "Block decoder hidden is not divisible by block_length"),
        (BadRotaryDims, "Rotary dimensions must be even"),
        (DuplicateName, "Two specs declare the same model name"),
        (BadName, "Model name cannot become a C# type name"),
        (Unsupported, "Spec asks for something this compiler does not support"),
        (FieldNotForKind, "Spec field does not apply to this model kind"),
        (ContextTooShort, "Token decoder context is shorter than one block"),
        (TokenIdOutOfVocab, "Token id is outside the vocabulary"),
        (DuplicateField, "Spec field appears twice"),
        (SpecTooLarge, "Spec file is larger than a spec can be"),
        (BadNamespace, "namespace is not a C# namespace name"),
        (ModelTooLarge, "A weight matrix of the spec is too large for the generated code"),
        (GeneratorFailure, "The BlockTransformer generator failed"));

    public static DiagnosticDescriptor Find(string id) => ById[id];

    private static Dictionary<string, DiagnosticDescriptor> Create(params (string Id, string Title)[] entries)
    {
        var map = new Dictionary<string, DiagnosticDescriptor>();
        foreach (var (id, title) in entries)
        {
            map[id] = new DiagnosticDescriptor(
                id,
                title,
                "{0}",
                "BlockTransformer.Spec",
                DiagnosticSeverity.Error,
                isEnabledByDefault: true);
        }

        return map;
    }
}
