using System.Text;
using System.Text.Json;

namespace BlockTransformer.Runtime;

/// <summary>Writes tensors given as f32 values in a chosen dtype, in the standard safetensors layout.</summary>
public static class SafeTensorsWriter
{
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, float[] Values)> tensors, TensorDType dtype)
    {
        var list = tensors.ToList();
        Write(path, list.Select(t => new TensorSpec(t.Name, t.Shape)).ToList(), list.Select(t => t.Values), dtype);
    }

    /// <summary>
    /// The header needs only names and shapes, so <paramref name="values"/> (one array per tensor, in order) is
    /// enumerated once, after it: a caller can produce each tensor's values as it is written and never hold
    /// the whole model (`bt init-weights` of the 1.2B model would otherwise keep 5.6 GB of floats).
    /// </summary>
    public static void Write(string path, IReadOnlyList<TensorSpec> tensors, IEnumerable<float[]> values, TensorDType dtype)
    {
        var elementSize = TensorDTypes.Size(dtype);
        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var tensor in tensors)
            {
                var bytes = tensor.ElementCount * elementSize;
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", TensorDTypes.HeaderName(dtype));
                json.WriteStartArray("shape");
                foreach (var dim in tensor.Shape)
                {
                    json.WriteNumberValue(dim);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }

            json.WriteEndObject();
        }

        // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does.
        var header = headerStream.ToArray().Concat(Encoding.ASCII.GetBytes(new string(' ', (int)((8 - (headerStream.Length % 8)) % 8)))).ToArray();
        using var file = new BufferedStream(File.Create(path), 1 << 20);
        file.Write(BitConverter.GetBytes((long)header.Length));
        file.Write(header);
        var index = 0;
        foreach (var tensorValues in values)
        {
            if (index >= tensors.Count || tensorValues.LongLength != tensors[index].ElementCount)
            {
                throw new ArgumentException(index >= tensors.Count
                    ? $"more value arrays than the {tensors.Count} tensors of the header."
                    : $"tensor '{tensors[index].Name}' {tensors[index].ShapeText} needs {tensors[index].ElementCount} values, got {tensorValues.LongLength}.");
            }

            WriteValues(file, tensorValues, dtype);
            index++;
        }

        if (index != tensors.Count)
        {
            throw new ArgumentException($"values for {index} of the {tensors.Count} tensors of the header.");
        }
    }

    private static void WriteValues(Stream stream, float[] values, TensorDType dtype)
    {
        var buffer = new byte[values.Length * TensorDTypes.Size(dtype)];
        for (var i = 0; i < values.Length; i++)
        {
            switch (dtype)
            {
                case TensorDType.F32:
                    BitConverter.TryWriteBytes(buffer.AsSpan(i * 4), values[i]);
                    break;
                case TensorDType.BF16:
                    BitConverter.TryWriteBytes(buffer.AsSpan(i * 2), TensorDTypes.ToBFloat16(values[i]));
                    break;
                case TensorDType.F16:
                    BitConverter.TryWriteBytes(buffer.AsSpan(i * 2), (Half)values[i]);
                    break;
            }
        }

        stream.Write(buffer);
    }
}
