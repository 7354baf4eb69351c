using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace BlockTransformer.Generators.Helpers;

/// <summary>A position in a spec file: offset and length plus zero-based line and column.</summary>
internal sealed record SpecLocation(string Path, int Offset, int Length, int Line, int Column)
{
    public Location ToLocation() => Location.Create(
        Path,
        new TextSpan(Offset, Length),
        new LinePositionSpan(new LinePosition(Line, Column), new LinePosition(Line, Column + Length)));
}

/// <summary>
/// A diagnostic carried as plain data through the pipeline (no Roslyn Location, which is not
/// value-equatable); turned into a Diagnostic only when reported.
/// </summary>
internal sealed record DiagnosticInfo(string Id, string Message, SpecLocation Location)
{
    public Diagnostic ToDiagnostic() => Diagnostic.Create(
        SpecDiagnostics.Find(Id),
        Location.ToLocation(),
        Message);
}
