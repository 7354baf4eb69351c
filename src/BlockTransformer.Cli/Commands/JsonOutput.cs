using System.Text.Encodings.Web;
using System.Text.Json;

namespace BlockTransformer.Cli;

/// <summary>JSON on standard output, for people and scripts rather than HTML: "128->512", not "128-\u003E512".</summary>
internal static class JsonOutput
{
    public static Utf8JsonWriter Create(bool indented) =>
        new(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
