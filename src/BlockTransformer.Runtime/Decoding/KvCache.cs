namespace BlockTransformer.Runtime;

/// <summary>
/// Keys and values of one decoder for a batch of sequences. Each sequence owns its slots, so batched
/// sequences never see each other. Per sequence, layer and K/V head:
/// <list type="bullet">
/// <item>keys are stored in blocks of 16 positions, [slot / 16][head_dim][16], so the scores of 16
/// positions are one panel product (the same kernel as the linear layers: no horizontal sums, one
/// sequential stream);</item>
/// <item>values are stored [slot][head_dim], contiguous per head, for the weighted sum.</item>
/// </list>
/// The block decoder's cache lives for a whole request; the token decoder's is simply overwritten from
/// slot 0 for every block. Elements are f32, or bf16 (kv_cache_dtype "bf16": half the bytes per position,
/// so twice the batch fits a memory budget and attention streams half as much), in the same layout.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    public const int KeyBlock = 16;

    private readonly AlignedBuffer storage;

    public KvCache(int sequences, int layers, int capacity, int kvHeads, int headDim, bool bf16)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sequences);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        Sequences = sequences;
        Layers = layers;
        Capacity = capacity;
        KvHeads = kvHeads;
        HeadDim = headDim;
        ElementBytes = bf16 ? sizeof(ushort) : sizeof(float);
        storage = new AlignedBuffer(BytesFor(sequences, layers, capacity, kvHeads * headDim, bf16) / sizeof(float));
    }

    public int Sequences { get; }

    public int Layers { get; }

    public int Capacity { get; }

    public int KvHeads { get; }

    public int HeadDim { get; }

    /// <summary>4 for an f32 cache, 2 for a bf16 one.</summary>
    public int ElementBytes { get; }

    public int KvDim => KvHeads * HeadDim;

    /// <summary>Capacity rounded up to whole key blocks.</summary>
    public int BlockedCapacity => RoundUp(Capacity);

    /// <summary>Bytes of a cache (a whole number of f32s either way: capacity is rounded up to 16 slots).</summary>
    public static long BytesFor(int sequences, int layers, int capacity, int kvDim, bool bf16) =>
        (long)sequences * layers * 2 * RoundUp(capacity) * kvDim * (bf16 ? sizeof(ushort) : sizeof(float));

    /// <summary>
    /// Key blocks of one head: slot s, dim d at [(s / 16) · head_dim · 16 + d · 16 + s % 16]. <typeparamref name="T"/>
    /// is the element type: float, or ushort (bf16 bits) for a bf16 cache.
    /// </summary>
    public T* Keys<T>(int sequence, int layer, int kvHead)
        where T : unmanaged =>
        Element<T>(Offset(sequence, layer) + ((long)kvHead * BlockedCapacity * HeadDim));

    /// <summary>Values of one head: slot s, dim d at [s · head_dim + d]; elements as for <see cref="Keys{T}"/>.</summary>
    public T* Values<T>(int sequence, int layer, int kvHead)
        where T : unmanaged =>
        Element<T>(Offset(sequence, layer) + ((long)(KvHeads + kvHead) * BlockedCapacity * HeadDim));

    public void Dispose() => storage.Dispose();

    private static int RoundUp(int capacity) => (capacity + KeyBlock - 1) / KeyBlock * KeyBlock;

    private T* Element<T>(long index)
        where T : unmanaged
    {
        if (sizeof(T) != ElementBytes)
        {
            throw new InvalidOperationException($"This KV cache holds {ElementBytes}-byte elements; {typeof(T).Name} has {sizeof(T)}.");
        }

        return (T*)((byte*)storage.Pointer + (index * ElementBytes));
    }

    private long Offset(int sequence, int layer) => (((long)sequence * Layers) + layer) * 2 * BlockedCapacity * KvDim;
}
