using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>
/// The panel layout the generated linear kernels read, checked element by element against its plain
/// definition: panel p, input i, lane j holds W[16p + j, i], zero past the last output.
/// </summary>
[Collection(NativeMemoryCollection.Name)]
public sealed unsafe class PanelArenaTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MatricesPackedOneAfterAnotherKeepThePanelLayoutAndAlignment(bool bf16)
    {
        (int Outputs, int Inputs)[] shapes = [(20, 3), (33, 5), (20, 3)];
        using var arena = new PanelArena(bf16, [(2, 20, 3), (1, 33, 5)]);
        float* previous = null;
        for (var m = 0; m < shapes.Length; m++)
        {
            var (outputs, inputs) = shapes[m];
            var rows = RandomRows(outputs, inputs, seed: m);
            using var weights = new AlignedBuffer(rows.Length);
            rows.CopyTo(weights.Span);
            var panels = arena.Pack(weights, outputs, inputs);

            Assert.Equal(0, (long)panels % AlignedBuffer.Alignment);
            Assert.True(previous == null || panels > previous, "each matrix gets panels of its own");
            previous = panels;
            for (var o = 0; o < Packing.Panels(outputs) * Packing.PanelWidth; o++)
            {
                for (var i = 0; i < inputs; i++)
                {
                    var expected = o < outputs ? rows[(o * inputs) + i] : 0f;
                    var at = ((long)(o / Packing.PanelWidth) * inputs * Packing.PanelWidth) + ((long)i * Packing.PanelWidth) + (o % Packing.PanelWidth);
                    var actual = bf16 ? TensorDTypes.FromBFloat16(((ushort*)panels)[at]) : panels[at];
                    Assert.Equal(bf16 ? TensorDTypes.Round(expected, TensorDType.BF16) : expected, actual);
                }
            }
        }
    }

    [Fact]
    public void AMatrixBeyondTheDeclaredShapesIsRefused()
    {
        using var arena = new PanelArena(bf16: false, [(1, 16, 4)]);
        using (var first = new AlignedBuffer(16 * 4))
        {
            arena.Pack(first, 16, 4);
        }

        using var second = new AlignedBuffer(16 * 4);
        var error = Assert.Throws<InvalidOperationException>(() => arena.Pack(second, 16, 4));
        Assert.Contains("[16, 4]", error.Message);
    }

    private static float[] RandomRows(int outputs, int inputs, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, outputs * inputs).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
    }
}
