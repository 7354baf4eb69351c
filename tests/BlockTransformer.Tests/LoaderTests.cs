using System.Text;
using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>The safetensors reader and weight binding: every failure is a message, never a crash.</summary>
public class LoaderTests
{
    private static readonly ModelDescriptor Vanilla = TestModels.Find("tiny_vanilla");

    [Fact]
    public void MismatchedFileListsEveryProblemByName()
    {
        var tensors = Vanilla.Tensors
            .Where(t => t.Name != "gpt_neox.layers.1.mlp.dense_h_to_4h.bias")
            .Select(t => t.Name == "embed_out.weight" ? t with { Shape = [101, 33] } : t)
            .Select(t => (t.Name, t.Shape, Values: new float[t.ElementCount]))
            .Append(("gpt_neox.extra.weight", [2L], new float[2]))
            .ToList();
        var path = TestModels.TempPath("mismatch.safetensors");
        SafeTensorsWriter.Write(path, tensors, TensorDType.F32);

        var error = Assert.Throws<SafeTensorsException>(() => Vanilla.Load(path)).Message;
        Assert.Contains("3 problems", error);
        Assert.Contains("missing tensor 'gpt_neox.layers.1.mlp.dense_h_to_4h.bias' [128]", error);
        Assert.Contains("tensor 'embed_out.weight' has shape [101, 33], expected [101, 32]", error);
        Assert.Contains("unexpected tensor 'gpt_neox.extra.weight' [2]", error);
    }

    [Fact]
    public void NonFloatDtypeIsAMismatch()
    {
        var path = TestModels.TempPath("int.safetensors");
        Vanilla.WriteRandomWeights(path, 1, TensorDType.F32);
        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BitConverter.ToInt64(bytes, 0);
        var header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        // Relabel one F32 tensor as I32 (same element size, so offsets stay consistent).
        const string original = "\"gpt_neox.embed_in.weight\":{\"dtype\":\"F32\"";
        Assert.Contains(original, header);
        var patched = header.Replace(original, original.Replace("F32", "I32"));
        File.WriteAllBytes(path, [.. bytes[..8], .. Encoding.UTF8.GetBytes(patched), .. bytes[(8 + headerLength)..]]);
        var error = Assert.Throws<SafeTensorsException>(() => Vanilla.Load(path)).Message;
        Assert.Contains("tensor 'gpt_neox.embed_in.weight' has dtype I32, expected F32, BF16 or F16", error);
    }

    [Fact]
    public void TruncatedFileIsReportedBeforeAnyRead()
    {
        var path = TestModels.TempPath("truncated.safetensors");
        Vanilla.WriteRandomWeights(path, 1, TensorDType.BF16);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 10)]);
        Assert.Contains("truncated or corrupt", Assert.Throws<SafeTensorsException>(() => Vanilla.Load(path)).Message);
    }

    [Theory]
    [InlineData("tiny", new byte[] { 1, 2, 3 }, "too short")]
    [InlineData("huge header", new byte[] { 255, 255, 255, 255, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "header length")]
    [InlineData("negative header", new byte[] { 0, 0, 0, 0, 0, 0, 0, 128, (byte)'{', (byte)'}' }, "header length")]
    [InlineData("not json", new byte[] { 4, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x', (byte)'y', (byte)'z' }, "not valid JSON")]
    [InlineData("not an object", new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)']' }, "JSON object")]
    public void BadHeadersAreClearErrors(string what, byte[] content, string expected)
    {
        var path = TestModels.TempPath($"{what.Replace(' ', '_')}.safetensors");
        File.WriteAllBytes(path, content);
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path)).Message;
        Assert.Contains(expected, error);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 16, "overlap")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "beyond the data section")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "0 ≤ begin ≤ end")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "non-negative integers")]
    [InlineData("""{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}""", 8, "unknown dtype 'Q4'")]
    [InlineData("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, "entry must be")]
    public void BadEntriesAreClearErrors(string header, int dataBytes, string expected)
    {
        var path = TestModels.TempPath("entry.safetensors");
        var headerBytes = Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)headerBytes.Length), .. headerBytes, .. new byte[dataBytes]]);
        Assert.Contains(expected, Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path)).Message);
    }

    [Fact]
    public void MissingFileIsAClearError() =>
        Assert.Contains("file not found", Assert.Throws<SafeTensorsException>(() => Vanilla.Load("/nonexistent/weights.safetensors")).Message);

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.BF16)]
    [InlineData(TensorDType.F16)]
    public void ValuesRoundTripThroughEachDtype(TensorDType dtype)
    {
        float[] values = [1f, -2.5f, 0.1f, 65504f, -0f, 3.1415927f];
        var path = TestModels.TempPath("values.safetensors");
        SafeTensorsWriter.Write(path, [("x", [6L], values)], dtype);
        using var file = SafeTensorsFile.Open(path);
        var read = new float[6];
        file.ReadAsFloat32(file.Tensors["x"], read);
        // Expected values come from the BCL's own conversions, not from the code under test.
        var expected = dtype switch
        {
            TensorDType.F16 => values.Select(v => (float)(Half)v).ToArray(),
            TensorDType.BF16 => [1f, -2.5f, 0.10009765625f, 65536f, -0f, 3.140625f],
            _ => values,
        };
        Assert.Equal(expected, read);
    }

    [Fact]
    public void BlockCheckpointMayCarryTheUnusedBlockDecoderEmbedIn()
    {
        var block = TestModels.Find("tiny_block");
        var tensors = block.Tensors.Select(t => (t.Name, t.Shape, Values: RandomWeights.Values(t, 3, TensorDType.F32)))
            .Append(("block_decoder.gpt_neox.embed_in.weight", [97L, 48], new float[97 * 48]))
            .Append(("block_decoder.gpt_neox.layers.0.attention.rotary_emb.inv_freq", [2L], new float[2]))
            .ToList();
        var path = TestModels.TempPath("with-embed-in.safetensors");
        SafeTensorsWriter.Write(path, tensors, TensorDType.F32);
        using var withExtra = block.Load(path);
        using var plain = block.CreateRandom(3, TensorDType.F32);
        var options = new GenerationOptions { MaxNewTokens = 6 };
        Assert.Equal(
            TextGenerator.For(plain).Generate([[4, 5]], options)[0].GeneratedIds,
            TextGenerator.For(withExtra).Generate([[4, 5]], options)[0].GeneratedIds);
    }

    [Fact]
    public void RandomWeightsFilledInParallelEqualEachTensorsOwnStream()
    {
        var block = TestModels.Find("tiny_block");
        var weights = block.RandomWeightSet(5, TensorDType.BF16);
        foreach (var spec in block.Tensors)
        {
            using var buffer = weights.Take(spec.Name);
            Assert.Equal(RandomWeights.Values(spec, 5, TensorDType.BF16), buffer.Span.ToArray());
        }
    }

    /// <summary>
    /// A tensor of more than one parallel chunk (2^20 values; odd-sized, so the last pair has one value) against
    /// its stream drawn serially, as the class documents it: value i = scale · N(0,1), the i-th Gaussian, two per
    /// pair; in memory and in a file.
    /// </summary>
    [Theory]
    [InlineData("gpt_neox.layers.0.mlp.dense_4h_to_h.weight", 1101, 1001)] // matrix: N(0,1)/√fan_in
    [InlineData("gpt_neox.layers.0.mlp.dense_4h_to_h.bias", 1_100_101, 0)] // vector: 0.1·N(0,1)
    public void RandomTensorOfSeveralChunksEqualsItsStreamDrawnSerially(string name, int rows, int columns)
    {
        var spec = new TensorSpec(name, columns == 0 ? [rows] : [rows, columns]);
        var scale = columns == 0 ? 0.1 : 1 / Math.Sqrt(columns);
        var random = RandomWeights.Stream(spec, 5);
        var expected = new float[spec.ElementCount];
        for (var i = 0; i < expected.Length; i += 2)
        {
            var (first, second) = random.NextGaussianPair();
            expected[i] = (float)(scale * first);
            if (i + 1 < expected.Length)
            {
                expected[i + 1] = (float)(scale * second);
            }
        }

        Assert.Equal(1, expected.Length % 2);
        Assert.Equal(expected, RandomWeights.Values(spec, 5, TensorDType.F32));
        var weights = RandomWeights.Create([spec], 5, TensorDType.F32);
        using var buffer = weights.Take(spec.Name);
        Assert.Equal(expected, buffer.Span.ToArray());
    }

    /// <summary>
    /// Both values of a Box–Muller pair are standard normals and uncorrelated: moments and the share within one
    /// standard deviation (erf(1/√2) = 0.6827) over 200,000 pairs, tolerances about five standard errors.
    /// </summary>
    [Fact]
    public void GaussianPairsAreIndependentStandardNormals()
    {
        const int Pairs = 200_000;
        var random = new SplitMix64(7);
        double[] sum = new double[2], squares = new double[2], within = new double[2];
        var product = 0.0;
        for (var k = 0; k < Pairs; k++)
        {
            var (first, second) = random.NextGaussianPair();
            double[] pair = [first, second];
            for (var j = 0; j < 2; j++)
            {
                sum[j] += pair[j];
                squares[j] += pair[j] * pair[j];
                within[j] += Math.Abs(pair[j]) < 1 ? 1 : 0;
            }

            product += first * second;
        }

        for (var j = 0; j < 2; j++)
        {
            Assert.InRange(sum[j] / Pairs, -0.012, 0.012);
            Assert.InRange(squares[j] / Pairs, 0.984, 1.016);
            Assert.InRange(within[j] / Pairs, 0.6827 - 0.0052, 0.6827 + 0.0052);
        }

        Assert.InRange(product / Pairs, -0.012, 0.012);
    }

    [Fact]
    public void SplitMix64SkipIsDrawingThatMany()
    {
        var drawn = new SplitMix64(42);
        for (var i = 0; i < 1000; i++)
        {
            drawn.Next();
        }

        var skipped = new SplitMix64(42).Skip(1000);
        Assert.Equal(drawn.Next(), skipped.Next());
        Assert.Equal(drawn.Next(), skipped.Next());
    }

    [Fact]
    public void WriterRefusesValuesThatDoNotMatchTheHeader()
    {
        var path = TestModels.TempPath("short.safetensors");
        var error = Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new TensorSpec("a", 2, 3)], [new float[5]], TensorDType.F32)).Message;
        Assert.Contains("tensor 'a' [2, 3] needs 6 values, got 5", error);
        error = Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new TensorSpec("a", 2), new TensorSpec("b", 1)], [new float[2]], TensorDType.F32)).Message;
        Assert.Contains("values for 1 of the 2 tensors", error);
    }
}
