using System.Diagnostics;

namespace BlockTransformer.Tests;

/// <summary>Runs a command and captures its exit code and output streams.</summary>
internal static class TestProcess
{
    public static (int Code, string Output, string Error) Run(string fileName, IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = StartInfo(fileName, args, workingDirectory);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>
    /// Runs a command and sends it SIGINT (what Ctrl+C sends) <paramref name="delay"/> after it writes a
    /// stderr line for which <paramref name="interruptAt"/> is true; a command still running a minute later is killed.
    /// </summary>
    public static (int Code, string Output, string Error) RunAndInterrupt(string fileName, IEnumerable<string> args, Func<string, bool> interruptAt, TimeSpan delay = default, string signal = "INT")
    {
        using var process = Process.Start(StartInfo(fileName, args, null))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = new System.Text.StringBuilder();
        var interrupted = false;
        while (process.StandardError.ReadLine() is { } line)
        {
            error.AppendLine(line);
            if (!interrupted && interruptAt(line))
            {
                interrupted = true;
                Thread.Sleep(delay);
                using var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                kill.WaitForExit();
            }
        }

        if (!process.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            process.Kill();
        }

        return (process.ExitCode, output.Result, error.ToString());
    }

    private static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> args, string? workingDirectory)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Child builds must not inherit the test host's MSBuild settings.
        foreach (var key in new[] { "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildExtensionsPath", "DOTNET_HOST_PATH" })
        {
            start.Environment.Remove(key);
        }

        return start;
    }
}
