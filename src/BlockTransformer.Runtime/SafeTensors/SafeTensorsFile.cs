using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace BlockTransformer.Runtime;

/// <summary>One tensor's header entry: dtype name as written, shape, and byte range in the data section.</summary>
public sealed record TensorEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public bool TryGetDType(out TensorDType dtype) =>
        Enum.TryParse(DType, ignoreCase: false, out dtype) && Enum.IsDefined(dtype);
}

/// <summary>
/// A memory-mapped safetensors file: 8-byte little-endian header length, a JSON header of
/// name → {dtype, shape, data_offsets}, then the data. Every offset is checked against the file before
/// anything is read, so a truncated or corrupt file is an error message, never an out-of-bounds read.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L << 20;

    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private readonly byte* data;

    private SafeTensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* data, Dictionary<string, TensorEntry> tensors)
    {
        Path = path;
        this.map = map;
        this.view = view;
        this.data = data;
        Tensors = tensors;
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, TensorEntry> Tensors { get; }

    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
        {
            throw new SafeTensorsException($"{path}: file not found.");
        }

        long fileLength;
        try
        {
            fileLength = new FileInfo(path).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new SafeTensorsException($"{path}: cannot read the file: {e.Message}");
        }

        if (fileLength < 8)
        {
            throw new SafeTensorsException($"{path}: {fileLength} bytes is too short for a safetensors file (it starts with an 8-byte header length).");
        }

        MemoryMappedFile map;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafeTensorsException($"{path}: cannot open the file: {e.Message}");
        }

        var view = map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
        byte* basePointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
        basePointer += view.PointerOffset;
        try
        {
            var headerLength = BitConverter.ToInt64(new ReadOnlySpan<byte>(basePointer, 8));
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
            {
                throw new SafeTensorsException($"{path}: header length {headerLength} is invalid for a {fileLength}-byte file (the file is truncated or not safetensors).");
            }

            var header = new ReadOnlySpan<byte>(basePointer + 8, (int)headerLength);
            var tensors = ParseHeader(path, header, fileLength - 8 - headerLength);
            return new SafeTensorsFile(path, map, view, basePointer + 8 + headerLength, tensors);
        }
        catch
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Converts a tensor to f32 into <paramref name="destination"/> (exactly ElementCount floats).</summary>
    public void ReadAsFloat32(TensorEntry entry, Span<float> destination)
    {
        if (!entry.TryGetDType(out var dtype))
        {
            throw new SafeTensorsException($"{Path}: tensor '{entry.Name}' has dtype {entry.DType}; only F32, BF16 and F16 can be loaded.");
        }

        if (destination.Length != entry.ElementCount)
        {
            throw new ArgumentException($"destination holds {destination.Length} floats, tensor '{entry.Name}' has {entry.ElementCount}.");
        }

        var source = data + entry.Begin;
        switch (dtype)
        {
            case TensorDType.F32:
                new ReadOnlySpan<float>(source, destination.Length).CopyTo(destination);
                break;
            case TensorDType.BF16:
                var bf16 = new ReadOnlySpan<ushort>(source, destination.Length);
                for (var i = 0; i < bf16.Length; i++)
                {
                    destination[i] = TensorDTypes.FromBFloat16(bf16[i]);
                }

                break;
            case TensorDType.F16:
                var f16 = new ReadOnlySpan<Half>(source, destination.Length);
                for (var i = 0; i < f16.Length; i++)
                {
                    destination[i] = (float)f16[i];
                }

                break;
        }
    }

    public void Dispose()
    {
        view?.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
    }

    private static Dictionary<string, TensorEntry> ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray());
        }
        catch (JsonException e)
        {
            throw new SafeTensorsException($"{path}: the header is not valid JSON ({e.Message}).");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new SafeTensorsException($"{path}: the header must be a JSON object of tensor entries.");
            }

            var tensors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    continue;
                }

                var entry = ParseEntry(path, property, dataLength);
                if (!tensors.TryAdd(entry.Name, entry))
                {
                    throw new SafeTensorsException($"{path}: tensor '{entry.Name}' appears twice in the header.");
                }
            }

            CheckNoOverlap(path, tensors.Values);
            return tensors;
        }
    }

    private static TensorEntry ParseEntry(string path, JsonProperty property, long dataLength)
    {
        var name = property.Name;
        var value = property.Value;
        string Bad(string what) => $"{path}: tensor '{name}': {what}";
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
        {
            throw new SafeTensorsException(Bad("entry must be {\"dtype\": string, \"shape\": [ints], \"data_offsets\": [begin, end]}."));
        }

        var shape = new List<long>();
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var size) || size < 0)
            {
                throw new SafeTensorsException(Bad($"shape {shapeElement.GetRawText()} must hold non-negative integers."));
            }

            shape.Add(size);
        }

        var offsets = offsetsElement.EnumerateArray().ToArray();
        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
        {
            throw new SafeTensorsException(Bad($"data_offsets {offsetsElement.GetRawText()} must be [begin, end] with 0 ≤ begin ≤ end."));
        }

        if (end > dataLength)
        {
            throw new SafeTensorsException(Bad($"data_offsets end {end} is beyond the data section ({dataLength} bytes); the file is truncated or corrupt."));
        }

        var entry = new TensorEntry(name, dtypeElement.GetString()!, shape.ToArray(), begin, end);
        var elementSize = entry.DType switch
        {
            "F64" or "I64" or "U64" => 8,
            "F32" or "I32" or "U32" => 4,
            "F16" or "BF16" or "I16" or "U16" => 2,
            "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
            _ => throw new SafeTensorsException(Bad($"unknown dtype '{entry.DType}'.")),
        };
        if (entry.ElementCount * elementSize != end - begin)
        {
            throw new SafeTensorsException(Bad($"shape [{string.Join(", ", shape)}] of {entry.DType} needs {entry.ElementCount * elementSize} bytes but data_offsets span {end - begin}."));
        }

        return entry;
    }

    private static void CheckNoOverlap(string path, IEnumerable<TensorEntry> entries)
    {
        TensorEntry? previous = null;
        foreach (var entry in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && entry.Begin < previous.End)
            {
                throw new SafeTensorsException($"{path}: tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{entry.Name}' [{entry.Begin}, {entry.End}) overlap.");
            }

            previous = entry;
        }
    }
}
