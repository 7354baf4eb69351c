using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace BlockTransformer.Runtime;

/// <summary>
/// Loads of bf16 weight panels and cached K/V widened to f32 in registers (bf16 is the top half of an
/// f32), for specs with memory_dtype or kv_cache_dtype "bf16": half the bytes streamed, f32 arithmetic.
/// </summary>
public static unsafe class Bf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadVector512(ushort* p) =>
        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadVector256(ushort* p) =>
        Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe()), 16).AsSingle();

    // Four values: an 8-byte load, as a 16-byte one would read past the end of the last panel.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadVector128(ushort* p) =>
        Vector128.ShiftLeft(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsUInt16()), 16).AsSingle();

    /// <summary>Each lane's bf16 bits in its low half: (bits + 0x7FFF + lsb) >> 16, or the quieted NaN's top half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> RoundLanes(Vector128<float> x)
    {
        var bits = x.AsUInt32();
        var top = bits >> 16;
        var rounded = (bits + Vector128.Create(0x7FFFu) + (top & Vector128<uint>.One)) >> 16;
        return Vector128.ConditionalSelect(Vector128.Equals(x, x).AsUInt32(), rounded, top | Vector128.Create(0x40u));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>
    /// target[i] = source[i] rounded to the nearest bf16 (ties to even; NaN stays a quiet NaN), exactly as
    /// <see cref="TensorDTypes.ToBFloat16"/>, eight at a time: the KV-cache store of kv_cache_dtype "bf16".
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Round(float* source, ushort* target, int count)
    {
        var i = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 8 <= count; i += 8)
            {
                Vector128.Narrow(RoundLanes(Vector128.Load(source + i)), RoundLanes(Vector128.Load(source + i + 4))).Store(target + i);
            }
        }

        for (; i < count; i++)
        {
            target[i] = TensorDTypes.ToBFloat16(source[i]);
        }
    }

    /// <summary>target[i] = source[i] as f32 for i &lt; count (a block of cached values that several rows read).</summary>
    /// <remarks>Optimized from the first call: as tier-0 code its loads were calls, 4% of a block model's prefill.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Widen(ushort* source, float* target, int count)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= count; i += 8)
            {
                LoadVector256(source + i).Store(target + i);
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 4 <= count; i += 4)
            {
                LoadVector128(source + i).Store(target + i);
            }
        }

        for (; i < count; i++)
        {
            target[i] = ToSingle(source[i]);
        }
    }
}
