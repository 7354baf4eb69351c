using System.Globalization;

namespace BlockTransformer.Runtime;

/// <summary>Byte counts as people read them in messages: "23.44 GiB", "512.0 MiB".</summary>
public static class ByteText
{
    public static string Format(long bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB");
}
