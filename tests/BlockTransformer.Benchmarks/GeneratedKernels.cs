using System.Reflection;
using BlockTransformer.Runtime;

namespace BlockTransformer.Benchmarks;

/// <summary>Signatures of the generated kernels the micro-benchmarks call.</summary>
public unsafe delegate void LinearKernel(float* x, int rows, float* w, float* b, float* y, bool accumulate);

public unsafe delegate void GeluLinearKernel(float* x, int rows, float* w, float* b, float* y);

public unsafe delegate void LayerNormKernel(float* x, int rows, float* weight, float* bias, float* y, float eps);

public unsafe delegate void AttentionKernel(float* qkv, DecoderRows rows, KvCache cache, int layer, float* output);

/// <summary>
/// Finds a generated kernel by the name the generator gives it (Linear{Out}x{In}, LayerNorm{Width},
/// {Part}Attention). The kernels stay private to the model class; a benchmark binds a delegate to one
/// once, in its setup, so the generated code carries nothing for benchmarking.
/// </summary>
internal static class GeneratedKernels
{
    public static Type ModelType(string modelName) =>
        typeof(GeneratedKernels).Assembly.GetTypes().SingleOrDefault(t =>
            typeof(ILanguageModel).IsAssignableFrom(t) && t.GetField("Name")?.GetRawConstantValue() as string == modelName)
        ?? throw new InvalidOperationException($"no compiled model named '{modelName}' in the benchmark assembly");

    public static T Bind<T>(Type model, string kernel, object? instance = null)
        where T : Delegate
    {
        var flags = BindingFlags.NonPublic | BindingFlags.Public | (instance is null ? BindingFlags.Static : BindingFlags.Instance);
        var method = model.GetMethod(kernel, flags)
            ?? throw new InvalidOperationException($"{model.Name} has no generated kernel '{kernel}' (has the generator renamed it?)");
        return method.CreateDelegate<T>(instance);
    }
}
