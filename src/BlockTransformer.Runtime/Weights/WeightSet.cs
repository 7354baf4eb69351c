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
    /// <param name="onWarning">Told of every tensor with NaN or infinite values (loaded all the same: such weights make non-finite logits).</param>
    public static WeightSet Load(SafeTensorsFile file, IReadOnlyList<TensorSpec> expected, IReadOnlyCollection<string> optional, Action<string>? onWarning = null)
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
            const int Listed = 20; // a file of another model has hundreds of problems: the first ones tell what it is
            var rest = problems.Count > Listed ? $"\n  … and {problems.Count - Listed} more" : string.Empty;
            throw new SafeTensorsException(
                $"{file.Path} does not fit the model ({problems.Count} problem{(problems.Count == 1 ? string.Empty : "s")}):\n  " + string.Join("\n  ", problems.Take(Listed)) + rest);
        }

        var tensors = new Dictionary<string, AlignedBuffer>(StringComparer.Ordinal);
        foreach (var spec in expected)
        {
            var buffer = new AlignedBuffer(spec.ElementCount);
            file.ReadAsFloat32(file.Tensors[spec.Name], buffer.Span);
            if (onWarning is not null && CountNonFinite(buffer.Span) is var bad and > 0)
            {
                onWarning($"{file.Path}: tensor '{spec.Name}' has {bad} NaN or infinite value{(bad == 1 ? string.Empty : "s")}; the model's logits will not be finite.");
            }

            tensors.Add(spec.Name, buffer);
        }

        return new WeightSet(tensors);
    }

    /// <summary>Values whose exponent bits are all set (NaN, +∞, −∞), counted a vector at a time.</summary>
    private static long CountNonFinite(ReadOnlySpan<float> values)
    {
        var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(values);
        var exponent = new System.Numerics.Vector<int>(0x7F800000);
        var count = 0L;
        var i = 0;
        for (; i <= bits.Length - System.Numerics.Vector<int>.Count; i += System.Numerics.Vector<int>.Count)
        {
            var v = new System.Numerics.Vector<int>(bits[i..]) & exponent;
            if (System.Numerics.Vector.EqualsAny(v, exponent))
            {
                count -= System.Numerics.Vector.Sum(System.Numerics.Vector.Equals(v, exponent)); // true lanes are -1
            }
        }

        for (; i < bits.Length; i++)
        {
            count += (bits[i] & 0x7F800000) == 0x7F800000 ? 1 : 0;
        }

        return count;
    }
}
