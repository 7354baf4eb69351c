using BlockTransformer.Generators;
using BlockTransformer.Models;
using Microsoft.CodeAnalysis;
using Snapshooter;
using Snapshooter.Xunit;

namespace BlockTransformer.Tests.Generator;

/// <summary>What the generator emits for valid specs: snapshots, compilable code, caching, method sizes.</summary>
public class GeneratorOutputTests
{
    private static (string, string) SpecFile(string name) =>
        ($"/specs/{name}.json", File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Specs", name + ".json")));

    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    [InlineData("tiny_vanilla_kv_bf16")] // the bf16 KV cache's store, score and value kernels
    public void GeneratedSourceMatchesSnapshot(string name)
    {
        var (result, _) = GeneratorHarness.Run(SpecFile(name));
        Assert.Empty(result.Diagnostics);
        var model = result.GeneratedSources.Single(s => s.HintName != "CompiledModels.g.cs");
        Snapshot.Match(model.SourceText.ToString(), new SnapshotNameExtension(name));
    }

    /// <summary>The ILGPU twin emitted when the project references BlockTransformer.Gpu: kernels and launch order.</summary>
    [Theory]
    [InlineData("tiny_block")]
    [InlineData("tiny_vanilla")]
    public void GeneratedGpuSourceMatchesSnapshot(string name)
    {
        var (result, _) = GeneratorHarness.Run(gpu: true, SpecFile(name));
        Assert.Empty(result.Diagnostics);
        var gpu = result.GeneratedSources.Single(s => s.HintName.EndsWith(".Gpu.g.cs", StringComparison.Ordinal));
        Snapshot.Match(gpu.SourceText.ToString(), new SnapshotNameExtension(name + "_gpu"));
    }

    [Fact]
    public void GpuTwinsAreEmittedOnlyWhenTheGpuBackendIsReferenced()
    {
        var (cpuOnly, _) = GeneratorHarness.Run(SpecFile("tiny_vanilla"));
        Assert.DoesNotContain(cpuOnly.GeneratedSources, s => s.HintName.Contains("Gpu", StringComparison.Ordinal));
        var (withGpu, _) = GeneratorHarness.Run(gpu: true, SpecFile("tiny_vanilla"));
        Assert.Equal(
            ["CompiledGpuModels.g.cs", "CompiledModels.g.cs", "TinyVanillaModel.Gpu.g.cs", "TinyVanillaModel.g.cs"],
            withGpu.GeneratedSources.Select(s => s.HintName).Order(StringComparer.Ordinal));
    }

    /// <summary>The user-facing snapshot helper: a model's GeneratedSource is exactly what the generator emitted.</summary>
    [Fact]
    public void EmbeddedGeneratedSourceIsTheEmittedModel()
    {
        var (result, _) = GeneratorHarness.Run(SpecFile("tiny_vanilla"));
        var emitted = result.GeneratedSources.Single(s => s.HintName == "TinyVanillaModel.g.cs").SourceText.ToString();
        Assert.Equal(BlockTransformer.Models.TinyVanillaModel.GeneratedSource, emitted);
        Assert.Contains("private static void Linear96x32(", BlockTransformer.Models.TinyVanillaModel.GeneratedSource);
    }

    [Fact]
    public void EveryTestSpecCompilesWithoutErrorsOrWarnings()
    {
        var specs = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Specs"), "*.json")
            .Select(path => SpecFile(Path.GetFileNameWithoutExtension(path))).ToArray();
        var (result, output) = GeneratorHarness.Run(gpu: true, specs);
        Assert.Empty(result.Diagnostics);
        Assert.Equal((2 * specs.Length) + 2, result.GeneratedSources.Length);
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void AnUnrelatedEditLeavesEveryStepCached()
    {
        var driver = GeneratorHarness.CreateDriver(SpecFile("tiny_block"), SpecFile("tiny_vanilla"));
        var compilation = GeneratorHarness.Compilation(gpu: true, "class Placeholder {}");
        driver = driver.RunGenerators(compilation);
        driver = driver.RunGenerators(compilation.AddSyntaxTrees(Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText("class Unrelated { int x; }")));
        var result = driver.GetRunResult().Results.Single();

        foreach (var step in new[] { TrackingNames.Parse, TrackingNames.Models, TrackingNames.Spec, TrackingNames.Gpu })
        {
            var outputs = result.TrackedSteps[step].SelectMany(s => s.Outputs).ToList();
            Assert.NotEmpty(outputs);
            Assert.All(outputs, o => Assert.True(
                o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"step {step} output was {o.Reason}"));
        }

        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs), o =>
            Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"output was {o.Reason}"));
    }

    [Fact]
    public void EditingOneSpecRegeneratesOnlyThatModel()
    {
        var (path, text) = SpecFile("tiny_vanilla");
        var vanilla = new GeneratorHarness.SpecText(path, text);
        var (blockPath, blockText) = SpecFile("tiny_block");
        var driver = GeneratorHarness.CreateDriver(new GeneratorHarness.SpecText(blockPath, blockText), vanilla);
        var compilation = GeneratorHarness.Compilation("class Placeholder {}");
        driver = driver.RunGenerators(compilation);
        driver = driver.ReplaceAdditionalText(vanilla, new GeneratorHarness.SpecText(path, text.Replace("\"layers\": 2", "\"layers\": 3")));
        driver = driver.RunGenerators(compilation);
        var reasons = driver.GetRunResult().Results.Single().TrackedSteps[TrackingNames.Spec].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.Equal(1, reasons.Count(r => r == IncrementalStepRunReason.Unchanged));
        Assert.Equal(1, reasons.Count(r => r is IncrementalStepRunReason.Modified or IncrementalStepRunReason.New));
    }

    /// <summary>The JIT compiles methods over 60,000 IL bytes without optimization; the largest paper model stays far below.</summary>
    [Fact]
    public void NoGeneratedMethodOfTheLargestModelApproachesTheJitLimits()
    {
        const System.Reflection.BindingFlags All = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Static
            | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.DeclaredOnly;
        var type = typeof(BlockMainB4_1_2bModel);
        var methods = type.GetMethods(All).Cast<System.Reflection.MethodBase>().Concat(type.GetConstructors(All))
            .Select(m => (m.Name, Size: m.GetMethodBody()?.GetILAsByteArray()?.Length ?? 0)).ToList();
        Assert.Contains(methods, m => m.Name == "BlockLayer11");
        var largest = methods.MaxBy(m => m.Size);
        Assert.True(largest.Size < 30_000, $"{largest.Name} has {largest.Size} bytes of IL, more than half the JIT's 60,000-byte limit");
    }
}
