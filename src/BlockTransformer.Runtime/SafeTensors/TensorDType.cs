namespace BlockTransformer.Runtime;

/// <summary>Element types the loader converts to f32 (the compute dtype).</summary>
public enum TensorDType
{
    F32,
    BF16,
    F16,
}

public static class TensorDTypes
{
    public static int Size(TensorDType dtype) => dtype == TensorDType.F32 ? 4 : 2;

    /// <summary>The safetensors header name ("F32", "BF16", "F16").</summary>
    public static string HeaderName(TensorDType dtype) => dtype.ToString();

    /// <summary>Parses a spec/CLI name ("f32", "bf16", "f16"), case-insensitive.</summary>
    public static bool TryParse(string name, out TensorDType dtype) =>
        Enum.TryParse(name, ignoreCase: true, out dtype) && Enum.IsDefined(dtype);

    /// <summary>Rounds f32 to bf16 (round to nearest even), as PyTorch does.</summary>
    public static ushort ToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    public static float FromBFloat16(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>The value after a round trip through the dtype: what a file of that dtype would hold.</summary>
    public static float Round(float value, TensorDType dtype) => dtype switch
    {
        TensorDType.BF16 => FromBFloat16(ToBFloat16(value)),
        TensorDType.F16 => (float)(Half)value,
        _ => value,
    };
}
