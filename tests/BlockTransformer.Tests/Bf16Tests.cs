using System.Runtime.Intrinsics;
using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>The bf16 loads of every vector width, and block widening, give the floats the bf16 values stand for.</summary>
public unsafe class Bf16Tests
{
    /// <summary>Floats exactly representable in bf16 (at most 8 significant bits), signs and zeros mixed.</summary>
    private static readonly float[] Values =
        [1f, -1.5f, 0.15625f, 3f, -0f, 1024f, 0.5f, -7f, 96f, 2.5f, -0.75f, 255f, 0.1015625f, -3.5f, 6f, 1.0078125f];

    [Fact]
    public void EveryWidthLoadsTheFloatsItsBf16ValuesStandFor()
    {
        Assert.All(Values, v => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(v) & 0xFFFF));
        var bf16 = Values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray();
        fixed (ushort* p = bf16)
        {
            for (var i = 0; i < Values.Length; i++)
            {
                Assert.Equal(Values[i], Bf16.ToSingle(p[i]));
            }

            for (var at = 0; at < Values.Length; at += 4)
            {
                Assert.Equal(Values[at..(at + 4)], Lanes(Bf16.LoadVector128(p + at)));
            }

            for (var at = 0; at < Values.Length; at += 8)
            {
                Assert.Equal(Values[at..(at + 8)], Lanes(Bf16.LoadVector256(p + at)));
            }

            Assert.Equal(Values, Lanes(Bf16.LoadVector512(p)));
        }
    }

    /// <summary>Lengths around the vector widths, so the vector loop and the scalar tail both run; nothing past count is written.</summary>
    [Theory]
    [InlineData(16)]
    [InlineData(13)]
    [InlineData(3)]
    public void WidenWritesEveryValueAndNothingPastTheCount(int count)
    {
        var bf16 = Values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray();
        var target = Enumerable.Repeat(float.NaN, Values.Length + 1).ToArray();
        fixed (ushort* source = bf16)
        fixed (float* t = target)
        {
            Bf16.Widen(source, t, count);
        }

        Assert.Equal(Values[..count], target[..count]);
        Assert.All(target[count..], v => Assert.True(float.IsNaN(v)));
    }

    /// <summary>
    /// The vector rounding equals the scalar one (itself PyTorch's rule) on ties, carries into the exponent,
    /// infinities, zeros, subnormals and NaNs, for lengths with and without a scalar tail.
    /// </summary>
    [Theory]
    [InlineData(24)]
    [InlineData(21)]
    public void RoundMatchesTheScalarRoundingOnEveryKindOfValue(int count)
    {
        float[] special =
        [
            1.00390625f, 1.01171875f, -1.00390625f, BitConverter.UInt32BitsToSingle(0x3F80FFFF), BitConverter.UInt32BitsToSingle(0x7F7FFFFF),
            float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, float.Epsilon, BitConverter.UInt32BitsToSingle(0x7F800001),
            float.NaN, BitConverter.UInt32BitsToSingle(0xFFC00001), 3.14159265f, -2.7182817f, 65504f,
        ];
        var random = new Random(3);
        var source = special.Concat(Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() - 0.5) * 1e3))).Take(count).ToArray();
        var target = new ushort[count + 1];
        target[count] = 0xABCD;
        fixed (float* s = source)
        fixed (ushort* t = target)
        {
            Bf16.Round(s, t, count);
        }

        Assert.Equal(source.Select(TensorDTypes.ToBFloat16), target[..count]);
        Assert.Equal(0xABCD, target[count]);
    }

    private static float[] Lanes(Vector128<float> v) => Enumerable.Range(0, 4).Select(i => v[i]).ToArray();

    private static float[] Lanes(Vector256<float> v) => Enumerable.Range(0, 8).Select(i => v[i]).ToArray();

    private static float[] Lanes(Vector512<float> v) => Enumerable.Range(0, 16).Select(i => v[i]).ToArray();
}
