namespace BlockTransformer.Runtime;

/// <summary>Embedding-table lookups and the argument checks generated entry points share.</summary>
public static unsafe class Lookup
{
    /// <summary>output row i = table row ids[i]; rows are <paramref name="width"/> floats.</summary>
    public static void Rows(AlignedBuffer table, int vocabSize, int width, ReadOnlySpan<int> ids, Span<float> output)
    {
        CheckRows(output.Length, ids.Length, width, nameof(output));
        for (var i = 0; i < ids.Length; i++)
        {
            var id = ids[i];
            if ((uint)id >= (uint)vocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the vocabulary 0..{vocabSize - 1}.");
            }

            new ReadOnlySpan<float>(table.Pointer + ((long)id * width), width).CopyTo(output.Slice(i * width, width));
        }
    }

    public static void CheckRows(int length, int rows, int width, string name)
    {
        if (rows < 0 || length != (long)rows * width)
        {
            throw new ArgumentException($"{name} holds {length} floats, but {rows} rows of {width} need {(long)rows * width}.", name);
        }
    }
}
