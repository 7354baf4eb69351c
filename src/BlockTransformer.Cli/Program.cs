using BlockTransformer.Cli;
using BlockTransformer.Runtime;

// `bt`: a thin command-line layer over the compiled models and the Runtime's generation API.
try
{
    if (args.Skip(1).Any(arg => arg is "--help" or "-h"))
    {
        return Usage(Console.Out, 0); // `bt generate --help` asks for the usage, not for a value of --help
    }

    return args.FirstOrDefault() switch
    {
        "list" => InfoCommands.List(),
        "info" => InfoCommands.Info(args[1..]),
        "init-weights" => InitWeightsCommand.Run(args[1..]),
        "generate" => GenerateCommand.Run(args[1..]),
        "bench" => BenchCommand.Run(args[1..]),
        null or "help" or "--help" or "-h" => Usage(Console.Out, 0),
        var unknown => throw new CliException($"unknown command '{unknown}'. Commands: list, info, init-weights, generate, bench."),
    };
}
catch (Exception e) when (e is CliException or ArgumentException or SafeTensorsException or IOException or UnauthorizedAccessException || Backend.IsUserError(e))
{
    Console.Error.WriteLine($"bt: error: {e.Message}");
    return 1;
}

static int Usage(TextWriter writer, int code)
{
    writer.WriteLine("""
        bt — Block Transformer models compiled to C#

          bt list
          bt info NAME [--format text|json]
          bt init-weights --model NAME --out FILE [--seed S] [--dtype f32|bf16|f16]
          bt generate --model NAME [--weights FILE] --prompt-ids "1,2,3" [--prompt-ids …] --max-new-tokens N
                      [--greedy | --temperature T --top-k K --top-p P --seed S] [--positions training|reference]
                      [--format text|json] [--top-logits K] [--weights-seed S] [--keep-going-after-eos]
                      [--device cpu|cuda|cpu-sim]   (GPU devices: JIT build only, dotnet bt.dll)
          bt bench (--model NAME | --pair A:B | --sweep A,B,…) [--setting prefill-heavy|decode-heavy|all | --prompt-len N --gen-len N]
                   [--batch 1,8,64 | --memory-budget 8GiB] [--repeat N] [--format table|json|csv]
                   [--calibrate] [--peak-gflops X --bandwidth-gbs Y] [--seed S] [--device cpu|cuda|cpu-sim]
        """);
    return code;
}
