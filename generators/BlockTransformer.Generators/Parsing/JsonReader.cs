using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace BlockTransformer.Generators.Parsing;

/// <summary>Raised for malformed JSON; carries where the reader stopped.</summary>
internal sealed class JsonSyntaxException : Exception
{
    public JsonSyntaxException(string message, TextPosition position)
        : base(message) => Position = position;

    public TextPosition Position { get; }
}

/// <summary>
/// A small strict JSON reader (RFC 8259, plus // and /* */ comments) that records the line and column
/// of every value. Hand-written because a generator may not take a dependency on System.Text.Json.
/// </summary>
internal sealed class JsonReader
{
    /// <summary>Nesting a spec never needs; deeper input is refused before the recursive reader could exhaust the compiler's stack.</summary>
    public const int MaxDepth = 32;

    private readonly string text;
    private int depth;
    private int offset;
    private int line;
    private int lineStart;

    private JsonReader(string text) => this.text = text;

    public static JsonNode Parse(string text)
    {
        var reader = new JsonReader(text);
        reader.SkipTrivia();
        var value = reader.ReadValue();
        reader.SkipTrivia();
        if (reader.offset < text.Length)
        {
            throw reader.Error($"unexpected '{text[reader.offset]}' after the end of the JSON value");
        }

        return value;
    }

    /// <summary>The current position; its span never reaches past the end of the text.</summary>
    private TextPosition Here(int length = 1) => new(offset, Math.Max(0, Math.Min(length, text.Length - offset)), line, offset - lineStart);

    private static bool IsDigit(char c) => c is >= '0' and <= '9'; // JSON digits are ASCII; char.IsDigit takes '١' too

    private JsonSyntaxException Error(string message) => new(message, Here());

    private JsonNode ReadValue()
    {
        if (offset >= text.Length)
        {
            throw Error("unexpected end of file: a value was expected");
        }

        var c = text[offset];
        return c switch
        {
            '{' => ReadObject(),
            '[' => ReadArray(),
            '"' => ReadString(),
            't' or 'f' or 'n' => ReadLiteral(),
            _ when c == '-' || IsDigit(c) => ReadNumber(),
            _ => throw Error($"unexpected '{c}': a value was expected"),
        };
    }

    private void Enter()
    {
        if (++depth > MaxDepth)
        {
            throw Error($"objects and arrays nested deeper than {MaxDepth} levels");
        }
    }

    private JsonObject ReadObject()
    {
        var start = Here();
        Enter();
        offset++;
        var members = new List<JsonMember>();
        SkipTrivia();
        if (Peek() == '}')
        {
            offset++;
            depth--;
            return new JsonObject(start, members);
        }

        while (true)
        {
            SkipTrivia();
            if (Peek() != '"')
            {
                throw Error("a property name in double quotes was expected");
            }

            var name = ReadString();
            SkipTrivia();
            Expect(':');
            SkipTrivia();
            members.Add(new JsonMember(name.Value, name.Position, ReadValue()));
            SkipTrivia();
            if (Peek() == ',')
            {
                offset++;
                continue;
            }

            Expect('}');
            depth--;
            return new JsonObject(start, members);
        }
    }

    private JsonArray ReadArray()
    {
        var start = Here();
        Enter();
        offset++;
        var items = new List<JsonNode>();
        SkipTrivia();
        if (Peek() == ']')
        {
            offset++;
            depth--;
            return new JsonArray(start, items);
        }

        while (true)
        {
            SkipTrivia();
            items.Add(ReadValue());
            SkipTrivia();
            if (Peek() == ',')
            {
                offset++;
                continue;
            }

            Expect(']');
            depth--;
            return new JsonArray(start, items);
        }
    }

    private JsonString ReadString()
    {
        var startOffset = offset;
        var start = Here();
        offset++;
        var value = new StringBuilder();
        while (true)
        {
            if (offset >= text.Length || text[offset] == '\n')
            {
                throw new JsonSyntaxException("unterminated string", start);
            }

            var c = text[offset++];
            if (c == '"')
            {
                break;
            }

            if (c != '\\')
            {
                value.Append(c);
                continue;
            }

            if (offset >= text.Length)
            {
                throw new JsonSyntaxException("unterminated string", start);
            }

            var escape = text[offset++];
            switch (escape)
            {
                case '"': value.Append('"'); break;
                case '\\': value.Append('\\'); break;
                case '/': value.Append('/'); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'n': value.Append('\n'); break;
                case 'r': value.Append('\r'); break;
                case 't': value.Append('\t'); break;
                case 'u' when offset + 4 <= text.Length
                    && int.TryParse(text.Substring(offset, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code):
                    value.Append((char)code);
                    offset += 4;
                    break;
                default:
                    offset--;
                    throw Error($"invalid escape sequence '\\{escape}'");
            }
        }

        return new JsonString(start with { Length = offset - startOffset }, value.ToString());
    }

    private JsonNode ReadLiteral()
    {
        var start = Here();
        foreach (var (word, node) in new (string, Func<TextPosition, JsonNode>)[]
        {
            ("true", p => new JsonBool(p, true)),
            ("false", p => new JsonBool(p, false)),
            ("null", p => new JsonNull(p)),
        })
        {
            if (string.CompareOrdinal(text, offset, word, 0, word.Length) == 0)
            {
                offset += word.Length;
                return node(start with { Length = word.Length });
            }
        }

        throw Error("unexpected word: a value (number, string, true, false, null, object or array) was expected");
    }

    private JsonNumber ReadNumber()
    {
        var start = Here();
        var begin = offset;
        var isInteger = true;
        if (Peek() == '-')
        {
            offset++;
        }

        ReadDigits();
        if (Peek() == '.')
        {
            isInteger = false;
            offset++;
            ReadDigits();
        }

        if (Peek() is 'e' or 'E')
        {
            isInteger = false;
            offset++;
            if (Peek() is '+' or '-')
            {
                offset++;
            }

            ReadDigits();
        }

        var literal = text.Substring(begin, offset - begin);
        if (!double.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || double.IsInfinity(value))
        {
            throw new JsonSyntaxException($"the number {literal} is out of range", start with { Length = literal.Length });
        }

        return new JsonNumber(start with { Length = literal.Length }, literal, value, isInteger);
    }

    private void ReadDigits()
    {
        if (offset >= text.Length || !IsDigit(text[offset]))
        {
            throw Error("a digit was expected");
        }

        while (offset < text.Length && IsDigit(text[offset]))
        {
            offset++;
        }
    }

    private char Peek() => offset < text.Length ? text[offset] : '\0';

    private void Expect(char c)
    {
        if (Peek() != c)
        {
            throw offset >= text.Length
                ? Error($"unexpected end of file: '{c}' was expected")
                : Error($"'{c}' was expected but found '{text[offset]}'");
        }

        offset++;
    }

    private void SkipTrivia()
    {
        while (offset < text.Length)
        {
            var c = text[offset];
            if (c == '\n')
            {
                offset++;
                line++;
                lineStart = offset;
            }
            else if (c is ' ' or '\t' or '\r')
            {
                offset++;
            }
            else if (c == '/' && offset + 1 < text.Length && text[offset + 1] == '/')
            {
                while (offset < text.Length && text[offset] != '\n')
                {
                    offset++;
                }
            }
            else if (c == '/' && offset + 1 < text.Length && text[offset + 1] == '*')
            {
                var start = Here(2);
                offset += 2;
                while (!(Peek() == '*' && offset + 1 < text.Length && text[offset + 1] == '/'))
                {
                    if (offset >= text.Length)
                    {
                        throw new JsonSyntaxException("unterminated /* comment", start);
                    }

                    if (text[offset] == '\n')
                    {
                        line++;
                        lineStart = offset + 1;
                    }

                    offset++;
                }

                offset += 2;
            }
            else
            {
                return;
            }
        }
    }
}
