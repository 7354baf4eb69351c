using System.Text;
using BlockTransformer.Runtime;
using Xunit.Abstractions;

namespace BlockTransformer.Tests;

/// <summary>
/// The safetensors reader on hostile files: every rule of the format, each reproducer a test, and a seeded
/// mutation fuzzer whose every input is either refused with a <see cref="SafeTensorsException"/> or is a valid file.
/// </summary>
public class SafeTensorsHostileInputTests(ITestOutputHelper output)
{
    public static TheoryData<string, byte[], string> Reproducers => new()
    {
        { "invalid UTF-8 in a tensor name", Header([.. "{\""u8, 0xFF, .. "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"u8], 8), "not valid" },
        { "lone surrogate escape in a name", Header("""{"\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"""u8, 8), "not valid Unicode" },
        { "lone surrogate escape in a dtype", Header("""{"t":{"dtype":"\ud800","shape":[2],"data_offsets":[0,8]}}"""u8, 8), "not valid Unicode" },
        { "a string in data_offsets", Header("""{"t":{"dtype":"F32","shape":[2],"data_offsets":["0",8]}}"""u8, 8), "must be [begin, end]" },
        { "data longer than the tensors", Header("""{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"""u8, 12), "belong to no tensor" },
        { "a gap between tensors", Header("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"""u8, 12), "belong to no tensor" },
        { "a zero-size tensor inside another", Header("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"""u8, 8), "overlap" },
        { "data not starting at 0", Header("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"""u8, 8), "does not start at byte 0" },
        { "metadata that is not a map of strings", Header("""{"__metadata__":{"a":1},"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"""u8, 4), "__metadata__ 'a' must be a string" },
        { "metadata that is an array", Header("""{"__metadata__":["a"],"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"""u8, 4), "__metadata__ must be an object" },
        { "invalid UTF-8 in metadata", Header([.. "{\"__metadata__\":{\"a\":\""u8, 0xC3, 0x28, .. "\"},\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"u8], 4), "not valid" },
        { "a field repeated in an entry", Header("""{"t":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"""u8, 4), "the field 'dtype' appears twice" },
        { "an unknown field in an entry", Header("""{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"""u8, 4), "another field, 'x'" },
        { "an element count past 64 bits", Header("""{"t":{"dtype":"F32","shape":[4611686018427387905],"data_offsets":[0,4]}}"""u8, 4), "more than 9223372036854775807 bytes" },
        { "a product of dimensions past 64 bits", Header("""{"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"""u8, 4), "more than" },
        { "a tensor name twice", Header("""{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"""u8, 8), "appears twice" },
        { "deep nesting", Header(Encoding.UTF8.GetBytes(new string('[', 10_000) + new string(']', 10_000)), 0), "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(Reproducers))]
    public void InvalidFilesAreRefusedNamingTheRule(string what, byte[] file, string expected)
    {
        var path = TestModels.TempPath("hostile.safetensors");
        File.WriteAllBytes(path, file);
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path)).Message;
        Assert.True(error.Contains(expected, StringComparison.Ordinal), $"{what}: {error}");
    }

    [Fact]
    public void AHeaderOverTheFormatsLimitIsRefusedBeforeItIsRead()
    {
        var path = TestModels.TempPath("big-header.safetensors");
        using (var stream = File.Create(path))
        {
            stream.Write(BitConverter.GetBytes(100_000_001L));
            stream.SetLength(100_000_020); // sparse: nothing is written past the length field
        }

        Assert.Contains("header length 100000001 is invalid", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path)).Message);
    }

    [Fact]
    public void ValidFilesWithMetadataZeroSizeTensorsAndPaddingLoad()
    {
        var header = """{"__metadata__":{"format":"pt"},"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"BF16","shape":[1,0],"data_offsets":[8,8]}}   """u8;
        var path = TestModels.TempPath("valid.safetensors");
        File.WriteAllBytes(path, Header(header, 8));
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["a", "e", "z"], file.Tensors.Keys.Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// Seeded mutations of a valid file (bytes of the header replaced, inserted or deleted, the length field and the
    /// data length changed). Each input is refused with the reader's own exception or is a valid file: its tensors
    /// cover the data exactly and every float tensor reads. BT_FUZZ_SEED replays a run (failures name the case's seed);
    /// BT_FUZZ_CASES runs a longer campaign.
    /// </summary>
    [Fact]
    public void MutatedFilesAreRefusedOrValid()
    {
        var runSeed = int.TryParse(Environment.GetEnvironmentVariable("BT_FUZZ_SEED"), out var given) ? given : Environment.TickCount;
        var cases = int.TryParse(Environment.GetEnvironmentVariable("BT_FUZZ_CASES"), out var more) ? more : 3000;
        var accepted = 0;
        var path = TestModels.TempPath("fuzz.safetensors");
        for (var i = 0; i < cases; i++)
        {
            var seed = HashCode.Combine(runSeed, i);
            File.WriteAllBytes(path, Mutate(new Random(seed)));
            try
            {
                using var file = SafeTensorsFile.Open(path);
                CheckValid(file, new FileInfo(path).Length, seed);
                accepted++;
            }
            catch (SafeTensorsException)
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"case seed {seed} (BT_FUZZ_SEED={runSeed}, case {i}): {e.GetType().Name}: {e.Message}");
            }
        }

        output.WriteLine($"BT_FUZZ_SEED={runSeed}: {cases} mutated files, {accepted} accepted (each checked valid), {cases - accepted} refused with SafeTensorsException, 0 other exceptions");
        Assert.True(accepted > 0 && accepted < cases, $"BT_FUZZ_SEED={runSeed}: {accepted} of {cases} accepted; the mutations should make both kinds");
    }

    private static readonly byte[] Base = Header("""{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"F16","shape":[1],"data_offsets":[22,24]}}"""u8, 24);

    private static byte[] Mutate(Random random)
    {
        var bytes = Base.ToList();
        byte[] alphabet = [.. "{}[]\",:-0123456789 eE.\\u"u8, 0xFF, 0xC3, 0x80, 0xED, 0xA0];
        for (var m = random.Next(1, 4); m > 0; m--)
        {
            var headerEnd = 8 + (int)BitConverter.ToInt64(Base.AsSpan(0, 8));
            switch (random.Next(6))
            {
                case 0: bytes[random.Next(8, Math.Min(headerEnd, bytes.Count))] = alphabet[random.Next(alphabet.Length)]; break;
                case 1: bytes.Insert(random.Next(8, Math.Min(headerEnd, bytes.Count)), alphabet[random.Next(alphabet.Length)]); break;
                case 2: bytes.RemoveAt(random.Next(8, Math.Min(headerEnd, bytes.Count))); break;
                case 3: bytes[random.Next(0, 8)] = (byte)random.Next(256); break;
                case 4: bytes.AddRange(new byte[random.Next(1, 9)]); break;
                default: bytes.RemoveRange(bytes.Count - 1, 1); break;
            }
        }

        return [.. bytes];
    }

    /// <summary>What an accepted file must be, checked independently of the reader's own rules.</summary>
    private static void CheckValid(SafeTensorsFile file, long fileLength, int seed)
    {
        var headerLength = BitConverter.ToInt64(File.ReadAllBytes(file.Path).AsSpan(0, 8));
        var position = 0L;
        foreach (var entry in file.Tensors.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            Assert.True(entry.Begin == position, $"seed {seed}: '{entry.Name}' starts at {entry.Begin}, not {position}");
            position = entry.End;
            if (entry.TryGetDType(out _))
            {
                file.ReadAsFloat32(entry, new float[entry.ElementCount]);
            }
        }

        Assert.True(position == fileLength - 8 - headerLength, $"seed {seed}: tensors cover {position} of {fileLength - 8 - headerLength} data bytes");
    }

    private static byte[] Header(ReadOnlySpan<byte> json, int dataBytes) =>
        [.. BitConverter.GetBytes((long)json.Length), .. json, .. new byte[dataBytes]];
}
