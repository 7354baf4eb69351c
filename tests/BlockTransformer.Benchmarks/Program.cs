using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/BlockTransformer.Benchmarks -- --filter '*' [-j Short] [-m]
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
