using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

public sealed class ByteTextTests
{
    /// <summary>Each size in the largest binary unit it reaches; a budget of a few KiB must not read "0.0 MiB".</summary>
    [Theory]
    [InlineData(0L, "0 bytes")]
    [InlineData(1023L, "1023 bytes")]
    [InlineData(1024L, "1.0 KiB")]
    [InlineData(1536L, "1.5 KiB")]
    [InlineData(512L << 20, "512.0 MiB")]
    [InlineData((1L << 30) + (1L << 29), "1.50 GiB")]
    public void FormatsInTheLargestUnitReached(long bytes, string expected) => Assert.Equal(expected, ByteText.Format(bytes));
}
