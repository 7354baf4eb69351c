using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/BlockTransformer.Benchmarks -- --filter '*' [-j Short] [-m]
// Exits with 1 when a --filter matched nothing or a benchmark failed (its setup threw, a kernel was not
// found), so CI's dry run catches a benchmark that no longer fits the generated code.
try
{
    _ = BlockTransformer.Benchmarks.BenchmarkModels.Selected().ToList();
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"benchmarks: {e.Message}");
    return 2;
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToList();
var nothingRan = args.Contains("--filter") && summaries.Count == 0;
var failed = nothingRan || summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success));
return failed ? 1 : 0;
