using System.Globalization;
using BlockTransformer.Runtime;

namespace BlockTransformer.Tests;

/// <summary>
/// The package as a user meets it: `dotnet pack`, a throw-away console project that references it
/// from a local folder feed and adds a spec, then build and run.
/// </summary>
public class PackageTests
{
    private static readonly Lazy<(string Feed, string Version)> Package = new(PackOnce);

    [Fact]
    public void ConsumerProjectBuildsRunsAndMatchesTheInRepoModel()
    {
        var project = CreateConsumer("consumer", File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Specs", "tiny_block.json")));
        var (code, output, error) = Dotnet(project, "run", "-c", "Release", "--", "13");
        Assert.True(code == 0, output + error);

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using var model = TestModels.Find("tiny_block").CreateRandom(13, TensorDType.F32);
        var firstLogits = new List<float>();
        var expected = TextGenerator.For(model).Generate([[5, 6, 7]], new GenerationOptions { MaxNewTokens = 9 }, (_, _, logits) =>
        {
            if (firstLogits.Count == 0)
            {
                firstLogits.AddRange(logits.ToArray());
            }
        });
        Assert.Equal(string.Join(",", expected[0].GeneratedIds), lines[0].Trim());
        Assert.Equal(string.Join(",", firstLogits.Select(l => l.ToString("R", CultureInfo.InvariantCulture))), lines[1].Trim());

        // EmitCompilerGeneratedFiles writes the generated model for review.
        Assert.NotEmpty(Directory.GetFiles(project, "TinyBlockModel.g.cs", SearchOption.AllDirectories));
    }

    [Fact]
    public void ConsumerProjectWithABrokenSpecFailsTheBuildAtTheSpecsLineAndColumn()
    {
        var spec = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Specs", "tiny_block.json"))
            .Replace("\"hidden\": 48, \"heads\": 3", "\"hidden\": 48, \"heads\": 5");
        var project = CreateConsumer("broken", spec);
        var (code, output, _) = Dotnet(project, "build", "-c", "Release");
        Assert.NotEqual(0, code);
        var line = spec.Split('\n').ToList().FindIndex(l => l.Contains("\"heads\": 5")) + 1;
        var column = spec.Split('\n')[line - 1].IndexOf("5,", StringComparison.Ordinal) + 1;
        Assert.Contains($"model.json({line},{column}): error BT0007", output);
    }

    private static string CreateConsumer(string name, string spec)
    {
        var (feed, version) = Package.Value;
        var directory = Path.Combine(Path.GetDirectoryName(feed)!, name);
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "model.json"), spec);
        File.WriteAllText(Path.Combine(directory, "nuget.config"), $"""
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(directory, $"{name}.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <EmitCompilerGeneratedFiles>true</EmitCompilerGeneratedFiles>
                <RestorePackagesPath>{Path.Combine(Path.GetDirectoryName(feed)!, "packages")}</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="BlockTransformer" Version="{version}" />
                <BlockTransformerModel Include="model.json" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(directory, "Program.cs"), """
            using System.Globalization;
            using BlockTransformer.Models;
            using BlockTransformer.Runtime;

            using var model = TinyBlockModel.CreateRandom(ulong.Parse(args[0], CultureInfo.InvariantCulture));
            var firstLogits = new List<float>();
            var results = TextGenerator.For(model).Generate([[5, 6, 7]], new GenerationOptions { MaxNewTokens = 9 }, (_, _, logits) =>
            {
                if (firstLogits.Count == 0)
                {
                    firstLogits.AddRange(logits.ToArray());
                }
            });
            Console.WriteLine(string.Join(",", results[0].GeneratedIds));
            Console.WriteLine(string.Join(",", firstLogits.Select(l => l.ToString("R", CultureInfo.InvariantCulture))));
            """);
        return directory;
    }

    /// <summary>Packs the repository once per test run, with a unique version so no stale cached copy is used.</summary>
    private static (string Feed, string Version) PackOnce()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "BlockTransformer.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }

        var work = Path.Combine(Path.GetTempPath(), "bt-package-tests", Guid.NewGuid().ToString("N"));
        var feed = Path.Combine(work, "feed");
        var version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}";
        var (code, output, error) = TestProcess.Run("dotnet", ["pack", Path.Combine(root, "src", "BlockTransformer.Runtime"), "-c", "Release", "-o", feed, $"-p:Version={version}"]);
        Assert.True(code == 0, output + error);
        return (feed, version);
    }

    private static (int Code, string Output, string Error) Dotnet(string project, params string[] args) =>
        TestProcess.Run("dotnet", args, project);
}
