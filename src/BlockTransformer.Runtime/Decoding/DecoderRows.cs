namespace BlockTransformer.Runtime;

/// <summary>
/// The rows a decoder call processes, one per new position: which sequence it belongs to (its KV-cache
/// slot set), which cache slot it fills and attends up to (causal), and its RoPE position. Slot and
/// position differ only in the reference-generate() position mode of the token decoder.
/// </summary>
public sealed class DecoderRows
{
    private int[] sequence = new int[16];
    private int[] slot = new int[16];
    private int[] position = new int[16];

    public int Count { get; private set; }

    public int Sequence(int row) => sequence[row];

    public int Slot(int row) => slot[row];

    public int Position(int row) => position[row];

    public void Clear() => Count = 0;

    public void Add(int sequenceIndex, int cacheSlot, int ropePosition)
    {
        if (Count == sequence.Length)
        {
            Array.Resize(ref sequence, Count * 2);
            Array.Resize(ref slot, Count * 2);
            Array.Resize(ref position, Count * 2);
        }

        sequence[Count] = sequenceIndex;
        slot[Count] = cacheSlot;
        position[Count] = ropePosition;
        Count++;
    }

    /// <summary>
    /// Checks every row against the cache and the decoder's RoPE table before a generated kernel indexes
    /// with it, so a caller's mistake is an exception, not an out-of-bounds write.
    /// </summary>
    public void Validate(int hiddenLength, int hidden, KvCache cache, int layers, int kvHeads, int headDim, bool bf16KvCache, int maxContext)
    {
        if (hiddenLength != Count * hidden)
        {
            throw new ArgumentException($"hidden holds {hiddenLength} floats but {Count} rows of width {hidden} need {Count * hidden}.");
        }

        var elementBytes = bf16KvCache ? sizeof(ushort) : sizeof(float);
        if (cache.Layers != layers || cache.KvHeads != kvHeads || cache.HeadDim != headDim || cache.ElementBytes != elementBytes)
        {
            throw new ArgumentException($"KV cache is for {cache.Layers} layers × {cache.KvHeads} heads × {cache.HeadDim} dims of {cache.ElementBytes} bytes, this decoder needs {layers} × {kvHeads} × {headDim} of {elementBytes}.");
        }

        for (var r = 0; r < Count; r++)
        {
            if ((uint)sequence[r] >= (uint)cache.Sequences || (uint)slot[r] >= (uint)cache.Capacity || (uint)position[r] >= (uint)maxContext)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(DecoderRows),
                    $"row {r}: sequence {sequence[r]}, slot {slot[r]}, position {position[r]} is outside the cache ({cache.Sequences} sequences × {cache.Capacity} slots) or the context ({maxContext}).");
            }
        }
    }
}
