namespace BlockTransformer.Cli;

/// <summary>`bt init-weights`: seeded random weights in the official safetensors layout.</summary>
internal static class InitWeightsCommand
{
    public static int Run(Arguments arguments)
    {
        var model = ModelCatalog.Find(arguments.Value("--model"));
        var output = arguments.Required("--out");
        var seed = arguments.ULong("--seed", 0);
        var dtype = ModelCatalog.DType(arguments.Value("--dtype"), model);
        if (Directory.Exists(output))
        {
            throw new CliException($"--out {output} is a directory; give a file name.");
        }

        try
        {
            model.WriteRandomWeights(output, seed, dtype);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--out {output}: cannot write the weights file ({e.Message})");
        }

        Console.Error.WriteLine($"wrote {model.Tensors.Count} tensors of {model.Info.Name} ({dtype}, seed {seed}) to {output}");
        return 0;
    }
}
