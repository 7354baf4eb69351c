namespace BlockTransformer.Runtime;

/// <summary>
/// Everything needed to instantiate one compiled model: its info, the tensors its weights file must hold
/// and a factory. Generated model types expose one as <c>Descriptor</c>.
/// </summary>
public sealed class ModelDescriptor
{
    private readonly Func<WeightSet, ILanguageModel> factory;

    public ModelDescriptor(ModelInfo info, TensorSpec[] tensors, string[] optionalTensors, Func<WeightSet, ILanguageModel> factory)
    {
        Info = info;
        Tensors = tensors;
        OptionalTensors = optionalTensors;
        this.factory = factory;
    }

    public ModelInfo Info { get; }

    /// <summary>Official tensor names and shapes, in checkpoint order.</summary>
    public IReadOnlyList<TensorSpec> Tensors { get; }

    /// <summary>Tensors that may be present but are not used (the block decoder's embed_in).</summary>
    public IReadOnlyList<string> OptionalTensors { get; }

    /// <summary>
    /// Loads a safetensors checkpoint; throws <see cref="SafeTensorsException"/> listing the mismatches.
    /// <paramref name="onWarning"/> is told of tensors with NaN or infinite values.
    /// </summary>
    public ILanguageModel Load(string path, Action<string>? onWarning = null) => factory(LoadWeights(path, onWarning));

    /// <summary>Seeded random weights, equal to what <see cref="WriteRandomWeights"/> writes for the same seed and dtype.</summary>
    public ILanguageModel CreateRandom(ulong seed, TensorDType dtype) => factory(RandomWeightSet(seed, dtype));

    /// <summary>A checked checkpoint as f32 tensors, for another backend (the GPU) to take.</summary>
    public WeightSet LoadWeights(string path, Action<string>? onWarning = null)
    {
        using var file = SafeTensorsFile.Open(path);
        return WeightSet.Load(file, Tensors, OptionalTensors, onWarning);
    }

    public WeightSet RandomWeightSet(ulong seed, TensorDType dtype) => RandomWeights.Create(Tensors, seed, dtype);

    public void WriteRandomWeights(string path, ulong seed, TensorDType dtype) => RandomWeights.Write(path, Tensors, seed, dtype);

    public TensorDType DefaultDType => TensorDTypes.TryParse(Info.WeightDType, out var dtype) ? dtype : TensorDType.F32;
}
