using System.Text;
using System.Text.Json;

namespace BlockTransformer.Runtime;

/// <summary>Writes tensors given as f32 values in a chosen dtype, in the standard safetensors layout.</summary>
public static class SafeTensorsWriter
{
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, float[] Values)> tensors, TensorDType dtype)
    {
        var list = tensors.ToList();
        var elementSize = TensorDTypes.Size(dtype);
        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, shape, values) in list)
            {
                var bytes = (long)values.Length * elementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", TensorDTypes.HeaderName(dtype));
                json.WriteStartArray("shape");
                foreach (var dim in shape)
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
        foreach (var (_, _, values) in list)
        {
            WriteValues(file, values, dtype);
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
