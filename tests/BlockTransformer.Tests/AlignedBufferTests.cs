using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>Placement and accounting of native buffers: small ones cache-line aligned, large ones in whole huge pages.</summary>
[Collection(NativeMemoryCollection.Name)]
public sealed unsafe class AlignedBufferTests
{
    private const long HugePage = 2 << 20;

    [Theory]
    [InlineData(1000, false)]
    [InlineData((1 << 20) - 1, false)] // just under 4 MiB of floats
    [InlineData(1 << 20, true)] // 4 MiB: whole huge pages
    [InlineData((5 << 20) / 4 + 3, true)] // 5 MiB + 12 bytes: rounded up to 6 MiB
    public void LargeBuffersTakeWholeHugePagesAndCountThem(long length, bool huge)
    {
        GC.Collect(); // buffers other tests dropped are freed now, not by the finalizer during this test
        GC.WaitForPendingFinalizers();
        var (before, requestedBefore) = (NativeMemoryStats.CurrentBytes, NativeMemoryStats.RequestedBytes);
        using (var buffer = new AlignedBuffer(length))
        {
            var address = (long)buffer.Pointer;
            Assert.Equal(0, address % (huge ? HugePage : AlignedBuffer.Alignment));
            var expected = huge ? (length * sizeof(float) + HugePage - 1) / HugePage * HugePage : length * sizeof(float);
            Assert.Equal(expected, buffer.AllocatedBytes);
            Assert.Equal(before + expected, NativeMemoryStats.CurrentBytes);
            Assert.Equal(requestedBefore + (length * sizeof(float)), NativeMemoryStats.RequestedBytes); // what per-sample slopes use
            Assert.All(new[] { buffer.Pointer[0], buffer.Pointer[length - 1] }, value => Assert.Equal(0f, value)); // zeroed
            buffer.Pointer[length - 1] = 1; // the last float is writable
        }

        Assert.Equal(before, NativeMemoryStats.CurrentBytes);
        Assert.Equal(requestedBefore, NativeMemoryStats.RequestedBytes);
    }
}
