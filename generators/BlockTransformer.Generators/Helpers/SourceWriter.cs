using System;
using System.Text;

namespace BlockTransformer.Generators.Helpers;

/// <summary>Indented text writer for emitted C#; '\n' line endings on every platform.</summary>
internal sealed class SourceWriter
{
    private readonly StringBuilder text = new();
    private int indent;

    public SourceWriter(int indent = 0) => this.indent = indent;

    /// <summary>Appends what <paramref name="other"/> wrote (its own indentation kept).</summary>
    public void Append(SourceWriter other) => text.Append(other.text);

    public void Line(string line = "")
    {
        if (line.Length > 0)
        {
            text.Append(' ', indent * 4).Append(line);
        }

        text.Append('\n');
    }

    /// <summary>Writes "{" and indents until the returned scope is disposed, which writes the "}".</summary>
    public Scope Block(string header, string closing = "}")
    {
        Line(header);
        Line("{");
        indent++;
        return new Scope(this, closing);
    }

    public override string ToString() => text.ToString();

    internal readonly struct Scope : IDisposable
    {
        private readonly SourceWriter writer;
        private readonly string closing;

        public Scope(SourceWriter writer, string closing)
        {
            this.writer = writer;
            this.closing = closing;
        }

        public void Dispose()
        {
            writer.indent--;
            writer.Line(closing);
        }
    }
}
