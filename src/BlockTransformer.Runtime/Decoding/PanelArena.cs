namespace BlockTransformer.Runtime;

/// <summary>
/// One allocation for all of a model's packed linear weights, one matrix after another. A single large
/// <see cref="AlignedBuffer"/> lies in 2 MiB huge pages; matrices allocated one by one get them only from
/// 4 MiB up, so a small model's layers (vanilla_31: 3 MiB per layer) were read through 4 KiB pages at
/// every decode step.
/// </summary>
public sealed unsafe class PanelArena : IDisposable
{
    private readonly AlignedBuffer storage;
    private readonly bool bf16;
    private long used;

    /// <param name="bf16">Panels hold bf16 weights (memory_dtype "bf16") rather than f32.</param>
    /// <param name="shapes">Every matrix that will be packed: how many of each [outputs, inputs] shape.</param>
    public PanelArena(bool bf16, ReadOnlySpan<(int Count, int Outputs, int Inputs)> shapes)
    {
        this.bf16 = bf16;
        var floats = 0L;
        foreach (var (count, outputs, inputs) in shapes)
        {
            floats += count * Packing.PanelFloats(outputs, inputs, bf16);
        }

        storage = new AlignedBuffer(floats);
    }

    /// <summary>Repacks <paramref name="weights"/> ([outputs, inputs], row-major) into the next free panels and frees the original.</summary>
    /// <returns>The panels, valid until the arena is disposed.</returns>
    public float* Pack(AlignedBuffer weights, int outputs, int inputs)
    {
        var floats = Packing.PanelFloats(outputs, inputs, bf16);
        if (used + floats > storage.Length)
        {
            throw new InvalidOperationException($"the panel arena holds {storage.Length} floats; a [{outputs}, {inputs}] matrix after {used} does not fit.");
        }

        var target = storage.Pointer + used;
        Packing.PackInto(weights, outputs, inputs, bf16, target);
        used += floats;
        return target;
    }

    public void Dispose() => storage.Dispose();
}
