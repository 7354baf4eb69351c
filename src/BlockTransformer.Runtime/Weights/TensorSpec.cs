namespace BlockTransformer.Runtime;

/// <summary>A tensor a model expects in its weights file: official name and shape.</summary>
public sealed record TensorSpec(string Name, params long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}
