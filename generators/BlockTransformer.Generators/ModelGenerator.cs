using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using BlockTransformer.Generators.Emit;
using BlockTransformer.Generators.Helpers;
using BlockTransformer.Generators.Model;
using BlockTransformer.Generators.Parsing;
using Microsoft.CodeAnalysis;

namespace BlockTransformer.Generators;

/// <summary>
/// Compiles every model spec (AdditionalFiles marked by the BlockTransformerModel item) into a
/// shape-specialized C# model type. Pipeline: parse (one spec) → model set (all specs, duplicate names
/// removed) → emit (one source per spec, plus a catalog). Each stage holds only equatable data.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ModelGenerator : IIncrementalGenerator
{
    public const string SpecMetadata = "build_metadata.AdditionalFiles.BlockTransformerModel";

    /// <summary>MSBuild property BlockTransformerEmbedSources=true adds each model's source as a string, for snapshot tests.</summary>
    public const string EmbedSourcesProperty = "build_property.BlockTransformerEmbedSources";

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var parsed = context.AdditionalTextsProvider
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Where(pair => pair.Right.GetOptions(pair.Left).TryGetValue(SpecMetadata, out var flag)
                && string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase))
            .Select((pair, token) => SpecParser.Parse(pair.Left.Path, pair.Left.GetText(token)?.ToString() ?? string.Empty))
            .WithTrackingName(TrackingNames.Parse);

        var models = parsed.Collect()
            .Select((all, _) => ModelSet.From(all))
            .WithTrackingName(TrackingNames.Models);

        context.RegisterSourceOutput(parsed, static (output, spec) => Report(output, spec.Diagnostics));
        context.RegisterSourceOutput(models.Select(static (set, _) => set.Diagnostics), static (output, diagnostics) => Report(output, diagnostics));

        var embedSources = context.AnalyzerConfigOptionsProvider.Select(static (options, _) =>
            options.GlobalOptions.TryGetValue(EmbedSourcesProperty, out var flag) && string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase));
        var specs = models.SelectMany(static (set, _) => set.Specs).WithTrackingName(TrackingNames.Spec);
        context.RegisterSourceOutput(specs.Combine(embedSources), static (output, pair) =>
            Emit(output, pair.Left, pair.Right));
        context.RegisterSourceOutput(models.Select(static (set, _) => set.Specs), static (output, all) =>
            output.AddSource("CompiledModels.g.cs", CatalogEmitter.Emit(all)));

        // A project that references the GPU backend also gets each model's ILGPU twin ({Model}.Gpu).
        var gpu = context.CompilationProvider
            .Select(static (compilation, _) => compilation.ReferencedAssemblyNames.Any(name => name.Name == GpuAssembly))
            .WithTrackingName(TrackingNames.Gpu);
        context.RegisterSourceOutput(specs.Combine(gpu).Where(static pair => pair.Right).Select(static (pair, _) => pair.Left), static (output, spec) =>
            Guarded(output, spec, () => output.AddSource($"{spec.TypeName}.Gpu.g.cs", GpuEmitter.Emit(spec))));
        context.RegisterSourceOutput(models.Select(static (set, _) => set.Specs).Combine(gpu), static (output, pair) =>
        {
            if (pair.Right)
            {
                output.AddSource("CompiledGpuModels.g.cs", CatalogEmitter.EmitGpu(pair.Left));
            }
        });
    }

    /// <summary>The GPU backend assembly: referencing it turns on GPU emission.</summary>
    public const string GpuAssembly = "BlockTransformer.Gpu";

    private static void Emit(SourceProductionContext output, ModelSpec spec, bool embedSource) => Guarded(output, spec, () =>
    {
        var source = ModelEmitter.Emit(spec);
        output.AddSource($"{spec.TypeName}.g.cs", source);
        if (embedSource)
        {
            output.AddSource($"{spec.TypeName}.Source.g.cs", ModelEmitter.EmitSourceConstant(spec, source));
        }
    });

    private static void Guarded(SourceProductionContext output, ModelSpec spec, Action emit)
    {
        try
        {
            emit();
        }
        catch (Exception e)
        {
            // Never throw out of a generator: a fault becomes a build error naming the spec.
            output.ReportDiagnostic(Diagnostic.Create(
                SpecDiagnostics.Find(SpecDiagnostics.GeneratorFailure),
                Location.None,
                $"Internal error while compiling {spec.SpecFileName}: {e.GetType().Name}: {e.Message}"));
        }
    }

    private static void Report(SourceProductionContext output, EquatableArray<DiagnosticInfo> diagnostics)
    {
        foreach (var diagnostic in diagnostics)
        {
            output.ReportDiagnostic(diagnostic.ToDiagnostic());
        }
    }
}

/// <summary>Names of pipeline steps, so tests can check what the driver cached.</summary>
public static class TrackingNames
{
    public const string Parse = "ParseSpec";
    public const string Models = "ModelSet";
    public const string Spec = "ModelSpec";
    public const string Gpu = "GpuEnabled";
}

/// <summary>All valid specs of a project with duplicate model names removed (and reported).</summary>
internal sealed record ModelSet(EquatableArray<ModelSpec> Specs, EquatableArray<DiagnosticInfo> Diagnostics)
{
    public static ModelSet From(ImmutableArray<ParsedSpec> parsed)
    {
        var specs = new List<ModelSpec>();
        var diagnostics = new List<DiagnosticInfo>();
        var seen = new Dictionary<string, ModelSpec>(StringComparer.Ordinal);
        foreach (var item in parsed.Where(p => p.Spec is not null).OrderBy(p => p.Spec!.Name, StringComparer.Ordinal).ThenBy(p => p.NameLocation?.Path, StringComparer.Ordinal))
        {
            var spec = item.Spec!;
            if (seen.TryGetValue(spec.TypeName, out var first))
            {
                diagnostics.Add(new DiagnosticInfo(
                    SpecDiagnostics.DuplicateName,
                    $"Model name \"{spec.Name}\" gives type {spec.TypeName}, already declared by \"{first.Name}\" in {first.SpecFileName}; give each spec a unique name.",
                    item.NameLocation!));
                continue;
            }

            seen.Add(spec.TypeName, spec);
            specs.Add(spec);
        }

        return new ModelSet(specs.ToEquatableArray(), diagnostics.ToEquatableArray());
    }
}
