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

    /// <summary>Repacks <paramref name="weights"/> ([outputs, inputs], row-major) into panels and frees the original.</summary>
    public static AlignedBuffer ToPanels(AlignedBuffer weights, int outputs, int inputs)
    {
        if (weights.Length != (long)outputs * inputs)
        {
            throw new ArgumentException($"weights hold {weights.Length} values, not {outputs} × {inputs}.");
        }

        var packed = new AlignedBuffer((long)Panels(outputs) * inputs * PanelWidth);
        float* source = weights.Pointer, target = packed.Pointer;
        for (var o = 0; o < outputs; o++)
        {
            var panel = target + ((long)(o / PanelWidth) * inputs * PanelWidth) + (o % PanelWidth);
            var row = source + ((long)o * inputs);
            for (var i = 0; i < inputs; i++)
            {
                panel[(long)i * PanelWidth] = row[i];
            }
        }

        weights.Dispose();
        return packed;
    }
}
