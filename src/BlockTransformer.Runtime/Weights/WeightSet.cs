namespace BlockTransformer.Runtime;

/// <summary>
/// The f32 weights of one model, keyed by official tensor name. Built only after the whole file was
/// checked against the model's tensor list, so a generated constructor can take every tensor blindly.
/// </summary>
public sealed class WeightSet
{
    /// <summary>Buffers that older GPT-NeoX state dicts saved (causal mask, RoPE frequencies); recomputed, never loaded.</summary>
    private static readonly string[] IgnoredSuffixes = { ".attention.bias", ".attention.masked_bias", ".rotary_emb.inv_freq" };

    private readonly Dictionary<string, AlignedBuffer> tensors;

    public WeightSet(Dictionary<string, AlignedBuffer> tensors) => this.tensors = tensors;

    /// <summary>Hands a tensor to the model, which then owns it.</summary>
    public AlignedBuffer Take(string name) =>
        tensors.Remove(name, out var buffer) ? buffer : throw new KeyNotFoundException($"weight '{name}' was not loaded.");

    /// <summary>
    /// Checks <paramref name="file"/> against <paramref name="expected"/> and converts every tensor to f32.
    /// One exception lists every missing tensor, every unexpected one and every shape or dtype mismatch.
    /// </summary>
    public static WeightSet Load(SafeTensorsFile file, IReadOnlyList<TensorSpec> expected, IReadOnlyCollection<string> optional)
    {
        var problems = new List<string>();
        var fileDTypes = new HashSet<string>();
        foreach (var spec in expected)
        {
            if (!file.Tensors.TryGetValue(spec.Name, out var entry))
            {
                problems.Add($"missing tensor '{spec.Name}' {spec.ShapeText}");
                continue;
            }

            if (!entry.Shape.SequenceEqual(spec.Shape))
            {
                problems.Add($"tensor '{spec.Name}' has shape [{string.Join(", ", entry.Shape)}], expected {spec.ShapeText}");
            }

            if (!entry.TryGetDType(out _))
            {
                problems.Add($"tensor '{spec.Name}' has dtype {entry.DType}, expected F32, BF16 or F16");
            }

            fileDTypes.Add(entry.DType);
        }

        var known = expected.Select(s => s.Name).Concat(optional).ToHashSet();
        foreach (var name in file.Tensors.Keys.Order(StringComparer.Ordinal))
        {
            if (!known.Contains(name) && !IgnoredSuffixes.Any(name.EndsWith))
            {
                problems.Add($"unexpected tensor '{name}' [{string.Join(", ", file.Tensors[name].Shape)}]");
            }
        }

        if (problems.Count > 0)
        {
            throw new SafeTensorsException(
                $"{file.Path} does not fit the model ({problems.Count} problem{(problems.Count == 1 ? string.Empty : "s")}):\n  " + string.Join("\n  ", problems));
        }

        var tensors = new Dictionary<string, AlignedBuffer>(StringComparer.Ordinal);
        foreach (var spec in expected)
        {
            var buffer = new AlignedBuffer(spec.ElementCount);
            file.ReadAsFloat32(file.Tensors[spec.Name], buffer.Span);
            tensors.Add(spec.Name, buffer);
        }

        return new WeightSet(tensors);
    }
}
