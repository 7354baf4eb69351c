namespace BlockTransformer.Runtime;

/// <summary>
/// Keys and values of one decoder for a batch of sequences: [sequence][layer][K|V][slot][kv_heads·d_h].
/// Each sequence owns its slots, so batched sequences never see each other. The block decoder's cache
/// lives for a whole request; the token decoder's is simply overwritten from slot 0 for every block.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    private readonly AlignedBuffer storage;

    public KvCache(int sequences, int layers, int capacity, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sequences);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        Sequences = sequences;
        Layers = layers;
        Capacity = capacity;
        KvDim = kvDim;
        storage = new AlignedBuffer(BytesFor(sequences, layers, capacity, kvDim) / sizeof(float));
    }

    public int Sequences { get; }

    public int Layers { get; }

    public int Capacity { get; }

    public int KvDim { get; }

    public static long BytesFor(int sequences, int layers, int capacity, int kvDim) =>
        (long)sequences * layers * 2 * capacity * kvDim * sizeof(float);

    /// <summary>Slot 0's key vector for this sequence and layer; slot t is at + t·KvDim.</summary>
    public float* Keys(int sequence, int layer) => storage.Pointer + Offset(sequence, layer);

    public float* Values(int sequence, int layer) => Keys(sequence, layer) + ((long)Capacity * KvDim);

    public void Dispose() => storage.Dispose();

    private long Offset(int sequence, int layer) => (((long)sequence * Layers) + layer) * 2 * Capacity * KvDim;
}
