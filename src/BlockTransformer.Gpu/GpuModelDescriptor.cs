using BlockTransformer.Runtime;

namespace BlockTransformer.Gpu;

/// <summary>A compiled model's GPU twin: the CPU descriptor (info, tensor list, loaders) plus a device factory.</summary>
public sealed class GpuModelDescriptor(ModelDescriptor model, Func<GpuDevice, WeightSet, GpuModel> factory)
{
    public ModelDescriptor Model { get; } = model;

    public ModelInfo Info => Model.Info;

    /// <summary>Device bytes the f32 weights take (every tensor, the unused block embed_in excluded).</summary>
    public long WeightBytes => Model.Tensors.Sum(t => t.ElementCount) * sizeof(float);

    public GpuModel Create(GpuDevice device, WeightSet weights)
    {
        device.EnsureFits(WeightBytes, $"the weights of {Info.Name} (f32)");
        return factory(device, weights);
    }

    public GpuModel Load(GpuDevice device, string path, Action<string>? onWarning = null)
    {
        device.EnsureFits(WeightBytes, $"the weights of {Info.Name} (f32)");
        return factory(device, Model.LoadWeights(path, onWarning));
    }

    public GpuModel CreateRandom(GpuDevice device, ulong seed, TensorDType dtype) => Create(device, Model.RandomWeightSet(seed, dtype));
}
