namespace BlockTransformer.Runtime;

/// <summary>
/// Weight layout for the generated linear kernels. A checkpoint's [Out, In] matrix is repacked at load
/// time into panels of 16 outputs: panel p holds, for each input i in order, the 16 weights
/// W[16p .. 16p+15, i] (zero-padded past Out). A kernel then streams one panel sequentially, multiplying
/// a broadcast x[i] into a 16-wide vector: no horizontal sums, one memory stream per thread.
/// </summary>
public static unsafe class Packing
{
    public const int PanelWidth = 16;

    public static int Panels(int outputs) => (outputs + PanelWidth - 1) / PanelWidth;

    /// <summary>Repacks <paramref name="weights"/> ([outputs, inputs], row-major) into f32 panels of its own and frees the original.</summary>
    public static AlignedBuffer ToPanels(AlignedBuffer weights, int outputs, int inputs)
    {
        var packed = new AlignedBuffer(PanelFloats(outputs, inputs, bf16: false));
        PackInto(weights, outputs, inputs, bf16: false, packed.Pointer);
        return packed;
    }

    /// <summary>
    /// Floats of storage the panels of an [outputs, inputs] matrix take, in f32 or bf16 (two weights per
    /// float), rounded up to whole 64-byte lines so that matrices packed one after another stay aligned.
    /// </summary>
    public static long PanelFloats(int outputs, int inputs, bool bf16)
    {
        var values = (long)Panels(outputs) * inputs * PanelWidth;
        var floats = bf16 ? (values + 1) / 2 : values;
        const int LineFloats = AlignedBuffer.Alignment / sizeof(float);
        return (floats + LineFloats - 1) / LineFloats * LineFloats;
    }

    /// <summary>
    /// Repacks <paramref name="weights"/> ([outputs, inputs], row-major) into panels at
    /// <paramref name="target"/> (<see cref="PanelFloats"/> zeroed floats) and frees the original. With
    /// <paramref name="bf16"/> (specs with memory_dtype "bf16") each weight is rounded to bf16, which is
    /// exact when the checkpoint itself is bf16.
    /// </summary>
    public static void PackInto(AlignedBuffer weights, int outputs, int inputs, bool bf16, float* target)
    {
        if (weights.Length != (long)outputs * inputs)
        {
            throw new ArgumentException($"weights hold {weights.Length} values, not {outputs} × {inputs}.");
        }

        if (bf16)
        {
            var halves = (ushort*)target;
            Repack(weights, outputs, inputs, (row, at) =>
            {
                for (var i = 0; i < inputs; i++)
                {
                    halves[at + ((long)i * PanelWidth)] = TensorDTypes.ToBFloat16(row[i]);
                }
            });
        }
        else
        {
            Repack(weights, outputs, inputs, (row, at) =>
            {
                for (var i = 0; i < inputs; i++)
                {
                    target[at + ((long)i * PanelWidth)] = row[i];
                }
            });
        }
    }

    /// <summary>
    /// Copies a tile of <paramref name="rows"/> consecutive input rows of <paramref name="length"/> floats into
    /// blocks of 16 inputs: block k holds x[0, 16k..16k+15], x[1, 16k..16k+15], … so a multi-row kernel
    /// reads its inputs as one sequential stream. Rows whose length is a multiple of 4 KiB all map to the
    /// same L1 set; read in place, 12 of them evict each other before a cache line's 16 inputs are used.
    /// </summary>
    /// <param name="length">Inputs per row, a multiple of 16.</param>
    public static void PackRowTile(float* x, int rows, int length, float* packed)
    {
        for (var i0 = 0; i0 < length; i0 += PanelWidth)
        {
            for (var r = 0; r < rows; r++)
            {
                Buffer.MemoryCopy(x + ((long)r * length) + i0, packed + ((long)i0 * rows) + (r * PanelWidth), PanelWidth * sizeof(float), PanelWidth * sizeof(float));
            }
        }
    }

    /// <summary>Stores one output's weights <paramref name="row"/>[0 .. In) at panel elements at, at + 16, at + 32, ….</summary>
    private delegate void RowStore(float* row, long at);

    /// <summary>
    /// Calls store for every output row, panels on every core (a panel's 16 rows on one thread), then frees the
    /// row-major original. A store per row rather than per weight, and in parallel: one call per weight on one
    /// core was about a sixth of loading vanilla_410.
    /// </summary>
    private static void Repack(AlignedBuffer weights, int outputs, int inputs, RowStore store)
    {
        var source = weights.Pointer;
        Parallel.For(0, Panels(outputs), new ParallelOptions { MaxDegreeOfParallelism = Parallelism.MaxThreads }, panel =>
        {
            for (var o = panel * PanelWidth; o < Math.Min(outputs, (panel + 1) * PanelWidth); o++)
            {
                store(source + ((long)o * inputs), ((long)panel * inputs * PanelWidth) + (o % PanelWidth));
            }
        });
        weights.Dispose();
    }
}
