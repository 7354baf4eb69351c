namespace BlockTransformer.Runtime;

/// <summary>
/// RoPE tables: for position p and frequency i &lt; r/2, angle = p · base^(-2i/r) (NeoX rotate-half
/// shares each angle between dims i and i + r/2). Computed in double, stored as float.
/// </summary>
public static unsafe class Rotary
{
    /// <summary>Returns [positions × r/2] cosines followed by the same number of sines.</summary>
    public static AlignedBuffer CosSinTable(int positions, int rotaryDims, double rotaryBase)
    {
        var half = rotaryDims / 2;
        var table = new AlignedBuffer(2L * positions * half);
        var cos = table.Pointer;
        var sin = cos + ((long)positions * half);
        for (var p = 0; p < positions; p++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = p * Math.Pow(rotaryBase, -2.0 * i / rotaryDims);
                cos[((long)p * half) + i] = (float)Math.Cos(angle);
                sin[((long)p * half) + i] = (float)Math.Sin(angle);
            }
        }

        return table;
    }
}
