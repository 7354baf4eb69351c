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
    /// <summary>The format's limit on the JSON header (100,000,000 bytes).</summary>
    private const long MaxHeaderBytes = 100_000_000;

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

    /// <summary>
    /// The header as the format defines it: a JSON object (UTF-8; trailing spaces allowed) of tensor entries, each
    /// exactly <c>dtype</c>, <c>shape</c> and <c>data_offsets</c> once, plus an optional <c>__metadata__</c> map of
    /// strings to strings; shapes and byte counts in checked arithmetic; the tensors' byte ranges, sorted, contiguous
    /// from 0 and covering the data section exactly. Stricter than the format in two documented places: a tensor
    /// name may appear once only, and an entry may hold no other field. Every violation is a
    /// <see cref="SafeTensorsException"/> naming the tensor and the rule.
    /// </summary>
    private static Dictionary<string, TensorEntry> ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
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
            var sawMetadata = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                var name = Text(path, property, "a tensor name");
                if (name == "__metadata__")
                {
                    CheckMetadata(path, property.Value, ref sawMetadata);
                    continue;
                }

                var entry = ParseEntry(path, name, property.Value, dataLength);
                if (!tensors.TryAdd(entry.Name, entry))
                {
                    throw new SafeTensorsException($"{path}: tensor '{entry.Name}' appears twice in the header.");
                }
            }

            CheckContiguous(path, tensors.Values, dataLength);
            return tensors;
        }
    }

    /// <summary>A property name as a string; invalid UTF-8 or a lone surrogate escape (<c>\ud800</c>) is the file's error, not a crash.</summary>
    private static string Text(string path, JsonProperty property, string what)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            throw new SafeTensorsException($"{path}: {what} in the header is not valid Unicode (invalid UTF-8 or a lone surrogate escape).");
        }
    }

    private static string Text(string path, JsonElement element, string what)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new SafeTensorsException($"{path}: {what} is not valid Unicode (invalid UTF-8 or a lone surrogate escape).");
        }
    }

    private static void CheckMetadata(string path, JsonElement metadata, ref bool seen)
    {
        if (seen)
        {
            throw new SafeTensorsException($"{path}: __metadata__ appears twice in the header.");
        }

        seen = true;
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw new SafeTensorsException($"{path}: __metadata__ must be an object of strings, not {metadata.ValueKind}.");
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in metadata.EnumerateObject())
        {
            var key = Text(path, item, "a __metadata__ key");
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new SafeTensorsException($"{path}: __metadata__ '{key}' must be a string, not {item.Value.ValueKind}.");
            }

            Text(path, item.Value, $"__metadata__ '{key}'");
            if (!keys.Add(key))
            {
                throw new SafeTensorsException($"{path}: __metadata__ '{key}' appears twice.");
            }
        }
    }

    private static TensorEntry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        string Bad(string what) => $"{path}: tensor '{name}': {what}";
        const string Form = "entry must be {\"dtype\": string, \"shape\": [ints], \"data_offsets\": [begin, end]}";
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new SafeTensorsException(Bad(Form + "."));
        }

        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var field in value.EnumerateObject())
        {
            var fieldName = Text(path, field, "a field name");
            if (fieldName is not ("dtype" or "shape" or "data_offsets"))
            {
                throw new SafeTensorsException(Bad($"{Form}; it has another field, '{fieldName}'."));
            }

            if (!fields.TryAdd(fieldName, field.Value))
            {
                throw new SafeTensorsException(Bad($"the field '{fieldName}' appears twice."));
            }
        }

        if (!fields.TryGetValue("dtype", out var dtypeValue) || dtypeValue.ValueKind != JsonValueKind.String
            || !fields.TryGetValue("shape", out var shapeValue) || shapeValue.ValueKind != JsonValueKind.Array
            || !fields.TryGetValue("data_offsets", out var offsetsValue) || offsetsValue.ValueKind != JsonValueKind.Array
            || offsetsValue.GetArrayLength() != 2)
        {
            throw new SafeTensorsException(Bad(Form + "."));
        }

        var dtype = Text(path, dtypeValue, $"tensor '{name}''s dtype");
        var elementSize = dtype switch
        {
            "F64" or "I64" or "U64" => 8,
            "F32" or "I32" or "U32" => 4,
            "F16" or "BF16" or "I16" or "U16" => 2,
            "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
            _ => throw new SafeTensorsException(Bad($"unknown dtype '{dtype}'.")),
        };

        var shape = new List<long>();
        var bytes = (long)elementSize;
        foreach (var dim in shapeValue.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var size) || size < 0)
            {
                throw new SafeTensorsException(Bad($"shape {shapeValue.GetRawText()} must hold non-negative integers."));
            }

            bytes = size == 0 || bytes == 0 ? 0
                : bytes <= long.MaxValue / size ? bytes * size
                : throw new SafeTensorsException(Bad($"shape {shapeValue.GetRawText()} of {dtype} holds more than {long.MaxValue} bytes."));
            shape.Add(size);
        }

        var offsets = offsetsValue.EnumerateArray().ToArray();
        if (offsets.Any(o => o.ValueKind != JsonValueKind.Number) || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
        {
            throw new SafeTensorsException(Bad($"data_offsets {offsetsValue.GetRawText()} must be [begin, end] with 0 ≤ begin ≤ end."));
        }

        if (end > dataLength)
        {
            throw new SafeTensorsException(Bad($"data_offsets end {end} is beyond the data section ({dataLength} bytes); the file is truncated or corrupt."));
        }

        if (bytes != end - begin)
        {
            throw new SafeTensorsException(Bad($"shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes but data_offsets span {end - begin}."));
        }

        return new TensorEntry(name, dtype, shape.ToArray(), begin, end);
    }

    /// <summary>Sorted by offsets, each tensor starts where the previous one ends, from 0 to the end of the data.</summary>
    private static void CheckContiguous(string path, IEnumerable<TensorEntry> entries, long dataLength)
    {
        var expected = 0L;
        TensorEntry? previous = null;
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin != expected)
            {
                throw new SafeTensorsException(previous is null
                    ? $"{path}: the first tensor's data, '{entry.Name}' [{entry.Begin}, {entry.End}), does not start at byte 0 of the data section."
                    : entry.Begin < expected
                    ? $"{path}: tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{entry.Name}' [{entry.Begin}, {entry.End}) overlap."
                    : $"{path}: bytes [{expected}, {entry.Begin}) between tensors '{previous.Name}' and '{entry.Name}' belong to no tensor.");
            }

            expected = entry.End;
            previous = entry;
        }

        if (expected != dataLength)
        {
            throw new SafeTensorsException($"{path}: the data section is {dataLength} bytes, but the tensors cover {expected}; bytes after {(previous is null ? "the header" : $"'{previous.Name}'")} belong to no tensor.");
        }
    }
}
