namespace BlockTransformer.Text;

/// <summary>
/// GPT-2's byte-level alphabet: every byte is one printable character, so BPE runs over characters while
/// covering any UTF-8 input. Printable Latin-1 bytes (33..126, 161..172, 174..255) stand for themselves;
/// the other 68 (controls, space, 127..160, 173) take U+0100 onwards in byte order, so a space is 'Ġ'.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    public static char ToChar(byte value) => ByteToChar[value];

    /// <summary>
    /// The bytes a token's characters stand for, appended to <paramref name="bytes"/>. As Hugging Face's
    /// ByteLevel decoder does, a token with any character outside the alphabet (an added token such as a run
    /// of spaces) contributes its own UTF-8 bytes instead.
    /// </summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        if (token.All(CharToByte.ContainsKey))
        {
            foreach (var c in token)
            {
                bytes.Add(CharToByte[c]);
            }
        }
        else
        {
            bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(token));
        }
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is (>= 33 and <= 126) or (>= 161 and <= 172) or (>= 174 and <= 255);
            map[b] = (char)(printable ? b : next++);
        }

        return map;
    }
}
