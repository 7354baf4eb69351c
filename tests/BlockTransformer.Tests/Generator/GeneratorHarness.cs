using System.Collections.Immutable;
using BlockTransformer.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace BlockTransformer.Tests.Generator;

/// <summary>Runs the model generator in-process through Roslyn's driver, as the compiler would.</summary>
internal static class GeneratorHarness
{
    /// <summary>The runtime and the framework; with <c>gpu</c> also BlockTransformer.Gpu and ILGPU, which turn on GPU emission.</summary>
    private static readonly Lazy<MetadataReference[]> GpuReferences = new(() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => Path.GetFileName(path) is not ("BlockTransformer.Tests.dll" or "bt.dll"))
            .Append(typeof(BlockTransformer.Runtime.KvCache).Assembly.Location)
            .Append(typeof(BlockTransformer.Gpu.GpuModel).Assembly.Location)
            .Distinct()
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToArray());

    private static readonly Lazy<MetadataReference[]> References = new(() =>
        GpuReferences.Value.Where(r => !Path.GetFileName(r.Display!).StartsWith("ILGPU", StringComparison.Ordinal)
            && Path.GetFileName(r.Display) != "BlockTransformer.Gpu.dll").ToArray());

    public static CSharpCompilation Compilation(params string[] sources) => Compilation(gpu: false, sources);

    public static CSharpCompilation Compilation(bool gpu, params string[] sources) => CSharpCompilation.Create(
        "SpecTests",
        sources.Select(s => CSharpSyntaxTree.ParseText(s, new CSharpParseOptions(LanguageVersion.Latest))),
        gpu ? GpuReferences.Value : References.Value,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true));

    public static GeneratorDriver CreateDriver(params (string Path, string Text)[] specs) =>
        CreateDriver(specs.Select(s => (AdditionalText)new SpecText(s.Path, s.Text)).ToArray());

    public static GeneratorDriver CreateDriver(params AdditionalText[] specs) => CSharpGeneratorDriver.Create(
        [new ModelGenerator().AsSourceGenerator()],
        specs,
        new CSharpParseOptions(LanguageVersion.Latest),
        new SpecOptions(),
        new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static (GeneratorRunResult Result, Compilation Output) Run(params (string Path, string Text)[] specs) => Run(gpu: false, specs);

    public static (GeneratorRunResult Result, Compilation Output) Run(bool gpu, params (string Path, string Text)[] specs)
    {
        var driver = CreateDriver(specs).RunGeneratorsAndUpdateCompilation(Compilation(gpu, "class Placeholder {}"), out var output, out _);
        return (driver.GetRunResult().Results.Single(), output);
    }

    internal sealed class SpecText(string path, string text) : AdditionalText
    {
        public override string Path => path;

        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }

    /// <summary>Marks every additional file as a spec, as the BlockTransformerModel item does in a build.</summary>
    private sealed class SpecOptions : AnalyzerConfigOptionsProvider
    {
        private static readonly Options Spec = new(ImmutableDictionary<string, string>.Empty.Add(ModelGenerator.SpecMetadata, "true"));

        public override AnalyzerConfigOptions GlobalOptions => new Options(ImmutableDictionary<string, string>.Empty);

        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => GlobalOptions;

        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => Spec;

        private sealed class Options(ImmutableDictionary<string, string> values) : AnalyzerConfigOptions
        {
            public override bool TryGetValue(string key, out string value) => values.TryGetValue(key, out value!);
        }
    }
}
