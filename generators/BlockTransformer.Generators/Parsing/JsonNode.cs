using System.Collections.Generic;

namespace BlockTransformer.Generators.Parsing;

/// <summary>Where a JSON token starts in the spec text (zero-based line and column) and how long it is.</summary>
internal readonly record struct TextPosition(int Offset, int Length, int Line, int Column);

/// <summary>A parsed JSON value that remembers where it was written, so diagnostics can point at it.</summary>
internal abstract record JsonNode(TextPosition Position)
{
    public abstract string KindName { get; }
}

internal sealed record JsonObject(TextPosition Position, IReadOnlyList<JsonMember> Members) : JsonNode(Position)
{
    public override string KindName => "an object";
}

internal sealed record JsonMember(string Name, TextPosition NamePosition, JsonNode Value);

internal sealed record JsonArray(TextPosition Position, IReadOnlyList<JsonNode> Items) : JsonNode(Position)
{
    public override string KindName => "an array";
}

internal sealed record JsonString(TextPosition Position, string Value) : JsonNode(Position)
{
    public override string KindName => "a string";
}

/// <summary>A number kept as written; <see cref="IsInteger"/> is false when it has a fraction or exponent.</summary>
internal sealed record JsonNumber(TextPosition Position, string Text, double Value, bool IsInteger) : JsonNode(Position)
{
    public override string KindName => "a number";
}

internal sealed record JsonBool(TextPosition Position, bool Value) : JsonNode(Position)
{
    public override string KindName => "true or false";
}

internal sealed record JsonNull(TextPosition Position) : JsonNode(Position)
{
    public override string KindName => "null";
}
