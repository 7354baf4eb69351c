namespace BlockTransformer.Runtime;

/// <summary>
/// Exact (erf) GELU: gelu(x) = x/2 · (1 + erf(x/√2)). erf uses Abramowitz–Stegun 7.1.26
/// (|error| ≤ 1.5e-7); generated SIMD kernels use the same constants.
/// </summary>
public static class Gelu
{
    public const float InvSqrt2 = 0.70710678118654752f;
    public const float P = 0.3275911f;
    public const float A1 = 0.254829592f;
    public const float A2 = -0.284496736f;
    public const float A3 = 1.421413741f;
    public const float A4 = -1.453152027f;
    public const float A5 = 1.061405429f;

    public static float Exact(float x)
    {
        var z = Math.Abs(x * InvSqrt2);
        var t = 1f / (1f + (P * z));
        var poly = ((((((((A5 * t) + A4) * t) + A3) * t) + A2) * t) + A1) * t;
        var erf = 1f - (poly * MathF.Exp(-z * z));
        return 0.5f * x * (1f + (x < 0 ? -erf : erf));
    }
}
