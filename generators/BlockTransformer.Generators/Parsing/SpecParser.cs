using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using BlockTransformer.Generators.Helpers;
using BlockTransformer.Generators.Model;
using Microsoft.CodeAnalysis.CSharp;

namespace BlockTransformer.Generators.Parsing;

/// <summary>The result of parsing one spec file: a model when it is valid, and every problem found.</summary>
internal sealed record ParsedSpec(ModelSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics, SpecLocation? NameLocation);

/// <summary>
/// Turns spec JSON into a <see cref="ModelSpec"/>, reporting every missing, unknown, mistyped or
/// inconsistent field with its line and column. Never throws; a spec with any error yields no model.
/// </summary>
internal sealed class SpecParser
{
    private static readonly string[] TopFields =
    {
        "name", "namespace", "kind", "vocab_size", "eos_id", "pad_id", "weight_dtype", "memory_dtype", "kv_cache_dtype", "compute_dtype",
        "block_length", "embedder", "prefix_length", "block_decoder", "token_decoder", "decoder",
    };

    private static readonly string[] BlockOnlyFields = { "block_length", "embedder", "prefix_length", "block_decoder", "token_decoder" };
    private static readonly string[] VanillaOnlyFields = { "decoder" };

    private static readonly string[] DecoderFields =
    {
        "layers", "hidden", "heads", "kv_heads", "intermediate", "rotary_pct", "rotary_base",
        "layer_norm_eps", "parallel_residual", "activation", "max_context",
    };

    private readonly string path;
    private readonly List<DiagnosticInfo> diagnostics = new();

    private SpecParser(string path) => this.path = path;

    public static ParsedSpec Parse(string path, string text)
    {
        var parser = new SpecParser(path);
        try
        {
            return parser.ParseText(text);
        }
        catch (Exception e)
        {
            // A generator must never throw; an internal fault still becomes a located build error.
            parser.Report(SpecDiagnostics.GeneratorFailure, new TextPosition(0, 0, 0, 0), $"internal error while reading the spec: {e.Message}");
            return new ParsedSpec(null, parser.diagnostics.ToEquatableArray(), null);
        }
    }

    private ParsedSpec ParseText(string text)
    {
        if (text.Length > SpecLimits.MaxSpecChars)
        {
            Report(SpecDiagnostics.SpecTooLarge, new TextPosition(0, 0, 0, 0), $"The spec is {text.Length} characters; a spec is a few hundred, and at most {SpecLimits.MaxSpecChars} are read.");
            return Done(null, null);
        }

        JsonNode root;
        try
        {
            root = JsonReader.Parse(text);
        }
        catch (JsonSyntaxException e)
        {
            Report(SpecDiagnostics.MalformedJson, e.Position, $"Malformed JSON: {e.Message}. A spec is one JSON object, e.g. {{ \"name\": \"my_model\", \"kind\": \"block\", ... }}.");
            return Done(null, null);
        }

        if (root is not JsonObject obj)
        {
            Report(SpecDiagnostics.WrongType, root.Position, $"A spec must be a JSON object, but this is {root.KindName}.");
            return Done(null, null);
        }

        var fields = Fields(obj, TopFields, "the spec");
        var kindText = Enum(fields, "kind", obj, new[] { "block", "vanilla" }, required: true, fallback: null);
        var kind = kindText == "vanilla" ? ModelKind.Vanilla : ModelKind.Block;
        if (kindText is not null)
        {
            foreach (var field in kind == ModelKind.Block ? VanillaOnlyFields : BlockOnlyFields)
            {
                if (fields.TryGetValue(field, out var member))
                {
                    Report(SpecDiagnostics.FieldNotForKind, member.NamePosition, kind == ModelKind.Block
                        ? $"'{field}' is for kind \"vanilla\"; a block model has 'block_decoder' and 'token_decoder' instead."
                        : $"'{field}' is only for kind \"block\"; remove it or set \"kind\": \"block\".");
                }
            }
        }

        var name = String(fields, "name", obj, required: true);
        var typeName = name is null ? null : ToTypeName(name);
        if (name is not null && typeName is null)
        {
            Report(SpecDiagnostics.BadName, fields["name"].Value.Position, $"Model name \"{name}\" cannot become a C# type name: use letters, digits, '_', '-' or '.', starting with a letter (e.g. \"block_main_b4_5\").");
        }

        var ns = String(fields, "namespace", obj, required: false) ?? "BlockTransformer.Models";
        if (fields.TryGetValue("namespace", out var nsMember) && NamespaceProblem(ns) is { } problem)
        {
            Report(SpecDiagnostics.BadNamespace, nsMember.Value.Position, $"namespace \"{Shorten(ns)}\" is not a C# namespace: {problem}. Use dot-separated identifiers, e.g. \"MyApp.Models\".");
        }

        var vocab = Int(fields, "vocab_size", obj, required: true, fallback: 0, min: 1, max: SpecLimits.MaxVocab);
        var eos = Int(fields, "eos_id", obj, required: false, fallback: 0, min: 0);
        var pad = Int(fields, "pad_id", obj, required: false, fallback: 0, min: 0);
        CheckTokenId(fields, "eos_id", eos, vocab);
        CheckTokenId(fields, "pad_id", pad, vocab);
        var weightDType = Enum(fields, "weight_dtype", obj, new[] { "f32", "bf16", "f16" }, required: false, fallback: "bf16");
        var memoryDType = Enum(fields, "memory_dtype", obj, new[] { "f32", "bf16" }, required: false, fallback: "f32");
        var kvCacheDType = Enum(fields, "kv_cache_dtype", obj, new[] { "f32", "bf16" }, required: false, fallback: "f32");
        var computeDType = Enum(fields, "compute_dtype", obj, new[] { "f32", "bf16", "f16" }, required: false, fallback: "f32");
        if (computeDType is "bf16" or "f16")
        {
            Report(SpecDiagnostics.Unsupported, fields["compute_dtype"].Value.Position, $"compute_dtype \"{computeDType}\" is not supported yet: write \"f32\" (weights stored as {computeDType} are converted to f32 on load).");
        }

        BlockSpec? block = null;
        DecoderSpec? decoder;
        if (kind == ModelKind.Block)
        {
            var blockLength = Int(fields, "block_length", obj, required: kindText is not null, fallback: 1, min: 1, max: SpecLimits.MaxBlockLength);
            var prefix = Int(fields, "prefix_length", obj, required: kindText is not null, fallback: 1, min: 1, max: SpecLimits.MaxPrefixLength);
            var embedder = Enum(fields, "embedder", obj, new[] { "lookup-concat" }, required: false, fallback: "lookup-concat");
            var blockDecoder = Decoder(fields, "block_decoder", obj, required: kindText is not null);
            decoder = Decoder(fields, "token_decoder", obj, required: kindText is not null);
            if (blockDecoder is not null && blockLength > 0 && blockDecoder.Hidden % blockLength != 0)
            {
                Report(SpecDiagnostics.BlockLengthDoesNotDivideHidden, ValueOr(fields, "block_length", obj), $"block_decoder.hidden ({blockDecoder.Hidden}) must be divisible by block_length ({blockLength}): the lookup-concat embedder gives each token hidden / block_length dims. Use a block_length that divides {blockDecoder.Hidden}.");
            }

            if (decoder is not null && decoder.MaxContext < prefix + blockLength - 1)
            {
                Report(SpecDiagnostics.ContextTooShort, ((JsonObject)fields["token_decoder"].Value).Members.First(m => m.Name == "max_context").Value.Position, $"token_decoder.max_context ({decoder.MaxContext}) must be at least prefix_length + block_length - 1 = {prefix + blockLength - 1}, the longest token-decoder sequence.");
            }

            if (blockDecoder is not null && decoder is not null)
            {
                CheckElements("the expansion layer (prefix_length × token_decoder.hidden × block_decoder.hidden)", (long)prefix * decoder.Hidden * blockDecoder.Hidden, ValueOr(fields, "prefix_length", obj));
                CheckElements("embed_in (vocab_size × block_decoder.hidden / block_length)", (long)vocab * (blockDecoder.Hidden / blockLength), ValueOr(fields, "vocab_size", obj));
            }

            if (blockDecoder is not null && embedder is not null)
            {
                block = new BlockSpec(blockLength, prefix, embedder, blockDecoder);
            }
        }
        else
        {
            decoder = Decoder(fields, "decoder", obj, required: true);
        }

        if (decoder is not null)
        {
            CheckElements("embed_out (vocab_size × hidden)", (long)vocab * decoder.Hidden, ValueOr(fields, "vocab_size", obj));
        }

        var spec = diagnostics.Count == 0 && name is not null && typeName is not null && weightDType is not null && memoryDType is not null && kvCacheDType is not null && decoder is not null
            ? new ModelSpec(name, typeName, ns, Path.GetFileName(path), kind, vocab, eos, pad, weightDType, memoryDType, kvCacheDType, block, decoder)
            : null;
        return Done(spec, fields.TryGetValue("name", out var nameMember) ? Locate(nameMember.Value.Position) : null);
    }

    private ParsedSpec Done(ModelSpec? spec, SpecLocation? nameLocation) =>
        new(spec, diagnostics.ToEquatableArray(), nameLocation);

    private DecoderSpec? Decoder(Dictionary<string, JsonMember> parent, string field, JsonObject owner, bool required)
    {
        if (!parent.TryGetValue(field, out var member))
        {
            if (required)
            {
                Report(SpecDiagnostics.MissingField, owner.Position, $"Missing '{field}': add \"{field}\": {{ \"layers\": …, \"hidden\": …, \"heads\": …, \"intermediate\": …, \"max_context\": … }}.");
            }

            return null;
        }

        if (member.Value is not JsonObject obj)
        {
            Report(SpecDiagnostics.WrongType, member.Value.Position, $"'{field}' must be an object with the decoder's sizes, but it is {member.Value.KindName}.");
            return null;
        }

        var before = diagnostics.Count;
        var fields = Fields(obj, DecoderFields, $"'{field}'");
        var layers = Int(fields, "layers", obj, required: true, fallback: 1, min: 1, owner: field, max: SpecLimits.MaxLayers);
        var hidden = Int(fields, "hidden", obj, required: true, fallback: 1, min: 1, owner: field, max: SpecLimits.MaxHidden);
        var heads = Int(fields, "heads", obj, required: true, fallback: 1, min: 1, owner: field, max: SpecLimits.MaxHidden);
        var kvHeads = Int(fields, "kv_heads", obj, required: false, fallback: heads, min: 1, owner: field, max: SpecLimits.MaxHidden);
        var intermediate = Int(fields, "intermediate", obj, required: true, fallback: 1, min: 1, owner: field, max: SpecLimits.MaxIntermediate);
        var rotaryPct = Number(fields, "rotary_pct", obj, fallback: 0.25, min: 0, max: 1, owner: field);
        var rotaryBase = Number(fields, "rotary_base", obj, fallback: 10000, min: double.Epsilon, max: double.MaxValue, owner: field);
        var eps = Number(fields, "layer_norm_eps", obj, fallback: 1e-5, min: double.Epsilon, max: 1, owner: field);
        var parallel = Bool(fields, "parallel_residual", obj, fallback: true, owner: field);
        Enum(fields, "activation", obj, new[] { "gelu" }, required: false, fallback: "gelu", owner: field);
        var maxContext = Int(fields, "max_context", obj, required: true, fallback: 1, min: 1, owner: field, max: SpecLimits.MaxContext);
        CheckElements($"{field}'s MLP (hidden × intermediate)", (long)hidden * intermediate, ValueOr(fields, "intermediate", obj));

        if (hidden % heads != 0)
        {
            Report(SpecDiagnostics.HeadsDoNotDivideHidden, ValueOr(fields, "heads", obj), $"{field}.hidden ({hidden}) must be divisible by heads ({heads}) to give a whole head dimension; e.g. heads = {SuggestDivisor(hidden, heads)}.");
        }
        else if (kvHeads > heads || heads % kvHeads != 0)
        {
            Report(SpecDiagnostics.KvHeadsDoNotDivideHeads, ValueOr(fields, "kv_heads", obj), $"{field}.heads ({heads}) must be divisible by kv_heads ({kvHeads}): each K/V head serves a whole group of query heads. Use a divisor of {heads}, e.g. {SuggestDivisor(heads, kvHeads)}.");
        }
        else
        {
            var rotaryDims = (int)(hidden / heads * rotaryPct);
            if (rotaryDims % 2 != 0)
            {
                Report(SpecDiagnostics.BadRotaryDims, ValueOr(fields, "rotary_pct", obj), $"{field}: rotary dims = int(head_dim {hidden / heads} × rotary_pct {rotaryPct.ToString(CultureInfo.InvariantCulture)}) = {rotaryDims} is odd; rotate-half needs an even count. Pick a rotary_pct that gives an even number.");
            }
        }

        return diagnostics.Count == before
            ? new DecoderSpec(layers, hidden, heads, kvHeads, intermediate, rotaryPct, rotaryBase, eps, parallel, maxContext)
            : null;
    }

    private Dictionary<string, JsonMember> Fields(JsonObject obj, string[] allowed, string where)
    {
        var fields = new Dictionary<string, JsonMember>();
        foreach (var member in obj.Members)
        {
            if (fields.ContainsKey(member.Name))
            {
                Report(SpecDiagnostics.DuplicateField, member.NamePosition, $"'{member.Name}' appears twice in {where}; keep one.");
            }
            else if (Array.IndexOf(allowed, member.Name) >= 0)
            {
                fields.Add(member.Name, member);
            }
            else
            {
                var closest = allowed.OrderBy(a => Distance(a, member.Name)).First();
                Report(SpecDiagnostics.UnknownField, member.NamePosition, $"Unknown field '{member.Name}' in {where}. Did you mean '{closest}'? Valid fields: {string.Join(", ", allowed)}.");
            }
        }

        return fields;
    }

    private int Int(Dictionary<string, JsonMember> fields, string name, JsonObject obj, bool required, int fallback, int min, string owner = "", int max = int.MaxValue)
    {
        var label = Label(owner, name);
        if (!fields.TryGetValue(name, out var member))
        {
            if (required)
            {
                Report(SpecDiagnostics.MissingField, obj.Position, $"Missing required field '{label}': add \"{name}\": <integer ≥ {min}>.");
            }

            return fallback;
        }

        if (member.Value is not JsonNumber { IsInteger: true } number || number.Value > int.MaxValue || number.Value < int.MinValue)
        {
            Report(SpecDiagnostics.WrongType, member.Value.Position, $"'{label}' must be a whole number (e.g. \"{name}\": {Math.Max(min, 1)}), but it is {Describe(member.Value)}.");
            return fallback;
        }

        if (number.Value < min)
        {
            Report(SpecDiagnostics.OutOfRange, member.Value.Position, $"'{label}' is {number.Text}; it must be at least {min}.");
            return fallback;
        }

        if (number.Value > max)
        {
            Report(SpecDiagnostics.OutOfRange, member.Value.Position, $"'{label}' is {number.Text}; it must be at most {max} (the most this compiler emits code and caches for).");
            return fallback;
        }

        return (int)number.Value;
    }

    private double Number(Dictionary<string, JsonMember> fields, string name, JsonObject obj, double fallback, double min, double max, string owner)
    {
        if (!fields.TryGetValue(name, out var member))
        {
            return fallback;
        }

        var label = Label(owner, name);
        if (member.Value is not JsonNumber number)
        {
            Report(SpecDiagnostics.WrongType, member.Value.Position, $"'{label}' must be a number (e.g. \"{name}\": {fallback.ToString(CultureInfo.InvariantCulture)}), but it is {Describe(member.Value)}.");
            return fallback;
        }

        if (number.Value < min || number.Value > max)
        {
            Report(SpecDiagnostics.OutOfRange, member.Value.Position, min == double.Epsilon
                ? $"'{label}' is {number.Text}; it must be greater than 0."
                : $"'{label}' is {number.Text}; it must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}.");
            return fallback;
        }

        return number.Value;
    }

    private bool Bool(Dictionary<string, JsonMember> fields, string name, JsonObject obj, bool fallback, string owner)
    {
        if (!fields.TryGetValue(name, out var member))
        {
            return fallback;
        }

        if (member.Value is JsonBool value)
        {
            return value.Value;
        }

        Report(SpecDiagnostics.WrongType, member.Value.Position, $"'{Label(owner, name)}' must be true or false, but it is {Describe(member.Value)}.");
        return fallback;
    }

    private string? String(Dictionary<string, JsonMember> fields, string name, JsonObject obj, bool required)
    {
        if (!fields.TryGetValue(name, out var member))
        {
            if (required)
            {
                Report(SpecDiagnostics.MissingField, obj.Position, $"Missing required field '{name}': add \"{name}\": \"…\".");
            }

            return null;
        }

        if (member.Value is JsonString text)
        {
            return text.Value;
        }

        Report(SpecDiagnostics.WrongType, member.Value.Position, $"'{name}' must be a string, but it is {Describe(member.Value)}.");
        return null;
    }

    private string? Enum(Dictionary<string, JsonMember> fields, string name, JsonObject obj, string[] allowed, bool required, string? fallback, string owner = "")
    {
        var label = Label(owner, name);
        var choices = string.Join(", ", allowed.Select(a => $"\"{a}\""));
        if (!fields.TryGetValue(name, out var member))
        {
            if (required)
            {
                Report(SpecDiagnostics.MissingField, obj.Position, $"Missing required field '{label}': add \"{name}\": one of {choices}.");
            }

            return fallback;
        }

        if (member.Value is not JsonString text)
        {
            Report(SpecDiagnostics.WrongType, member.Value.Position, $"'{label}' must be a string, one of {choices}, but it is {Describe(member.Value)}.");
            return null;
        }

        if (Array.IndexOf(allowed, text.Value) < 0)
        {
            Report(SpecDiagnostics.UnknownValue, member.Value.Position, $"'{label}' is \"{text.Value}\"; write one of {choices}.");
            return null;
        }

        return text.Value;
    }

    private void CheckTokenId(Dictionary<string, JsonMember> fields, string name, int id, int vocab)
    {
        if (vocab > 0 && id >= vocab && fields.TryGetValue(name, out var member))
        {
            Report(SpecDiagnostics.TokenIdOutOfVocab, member.Value.Position, $"'{name}' is {id} but vocab_size is {vocab}; token ids run from 0 to {vocab - 1}.");
        }
    }

    private static TextPosition ValueOr(Dictionary<string, JsonMember> fields, string name, JsonObject obj) =>
        fields.TryGetValue(name, out var member) ? member.Value.Position : obj.Position;

    private static string Label(string owner, string name) => owner.Length == 0 ? name : $"{owner}.{name}";

    private static string Describe(JsonNode node) => node switch
    {
        JsonNumber n => $"the number {n.Text}",
        JsonString s => $"the string \"{s.Value}\"",
        _ => node.KindName,
    };

    /// <summary>The divisor of <paramref name="n"/> closest to <paramref name="near"/> (n is bounded by <see cref="SpecLimits"/>).</summary>
    private static int SuggestDivisor(int n, int near)
    {
        var best = 1;
        for (var d = 1L; d <= n; d++)
        {
            if (n % d == 0 && Math.Abs(d - near) < Math.Abs((long)best - near))
            {
                best = (int)d;
            }
        }

        return best;
    }

    /// <summary>A weight matrix's element count must fit the int indices and constants of the generated code.</summary>
    private void CheckElements(string what, long elements, TextPosition position)
    {
        if (elements > int.MaxValue)
        {
            Report(SpecDiagnostics.ModelTooLarge, position, $"{what} would hold {elements} weights; one matrix can hold at most {int.MaxValue}.");
        }
    }

    /// <summary>Why <paramref name="ns"/> is not a C# namespace name (dot-separated identifiers, no keywords), or null.</summary>
    private static string? NamespaceProblem(string ns)
    {
        if (ns.Length > SpecLimits.MaxNamespaceChars)
        {
            return $"it is {ns.Length} characters, more than {SpecLimits.MaxNamespaceChars}";
        }

        var parts = ns.Split('.');
        if (parts.Length > SpecLimits.MaxNamespaceParts)
        {
            return $"it has {parts.Length} parts, more than {SpecLimits.MaxNamespaceParts}";
        }

        foreach (var part in parts)
        {
            if (part.Length == 0)
            {
                return "it has an empty part (two dots, or a dot at an end)";
            }

            if (!SyntaxFacts.IsValidIdentifier(part))
            {
                return $"'{Shorten(part)}' is not an identifier (letters, digits and '_', not starting with a digit; no spaces, '-' or ':')";
            }

            if (SyntaxFacts.GetKeywordKind(part) != SyntaxKind.None || part == "global")
            {
                return $"'{part}' is a C# keyword";
            }
        }

        return null;
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text.Substring(0, 57) + "...";

    /// <summary>Levenshtein distance, for "did you mean" suggestions.</summary>
    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }

    /// <summary>"block_main_b4_1.2b" → "BlockMainB4_1_2bModel": PascalCase, '_' kept between digits.</summary>
    internal static string? ToTypeName(string name)
    {
        if (name.Length == 0 || !char.IsLetter(name[0]) || name.Any(c => !(char.IsLetterOrDigit(c) && c < 128) && c is not ('_' or '-' or '.')))
        {
            return null;
        }

        var result = new System.Text.StringBuilder();
        foreach (var part in name.Split(new[] { '_', '-', '.' }, StringSplitOptions.RemoveEmptyEntries))
        {
            if (result.Length > 0 && char.IsDigit(result[result.Length - 1]) && char.IsDigit(part[0]))
            {
                result.Append('_');
            }

            result.Append(char.ToUpperInvariant(part[0])).Append(part, 1, part.Length - 1);
        }

        return result.Append("Model").ToString();
    }

    private void Report(string id, TextPosition position, string message) =>
        diagnostics.Add(new DiagnosticInfo(id, message, Locate(position)));

    private SpecLocation Locate(TextPosition position) =>
        new(path, position.Offset, position.Length, position.Line, position.Column);
}
