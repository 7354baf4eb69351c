using System.Globalization;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>
/// `bt bench`: the paper's throughput method (brief §7) on this machine. Seeded random weights,
/// uniformly random prompts, EOS off, greedy; throughput = generated tokens / wall time of the whole
/// generate call, warm-up first, median of the repeats; models of a pair or sweep alternate in one process.
/// </summary>
internal static class BenchCommand
{
    public static int Run(Arguments arguments)
    {
        var calibrateOnly = arguments.Has("--calibrate");
        var models = Models(arguments);
        var settings = Settings(arguments);
        var batches = arguments.Value("--batch") is { } batchText ? ParseBatches(batchText) : null;
        var budget = arguments.Value("--memory-budget") is { } budgetText ? ByteSize.Parse(budgetText) : (long?)null;
        var repeats = arguments.Int("--repeat", 3, min: 1);
        var seed = arguments.ULong("--seed", 0);
        var format = arguments.Value("--format") ?? "table";
        var peaksFlops = arguments.Float("--peak-gflops");
        var peaksBandwidth = arguments.Float("--bandwidth-gbs");
        var device = arguments.Value("--device");
        if (format is not ("table" or "json" or "csv"))
        {
            throw new CliException($"--format must be table, json or csv, got '{format}'.");
        }

        if (batches is not null && budget is not null)
        {
            throw new CliException("give either --batch or --memory-budget, not both.");
        }

        using var backend = Backend.Open(device);
        var peaks = MachineCalibration.Load(calibrateOnly, peaksFlops, peaksBandwidth, backend);
        if (calibrateOnly && models.Count == 0)
        {
            return 0;
        }

        if (models.Count == 0)
        {
            throw new CliException("name what to measure: --model NAME, --pair A:B or --sweep A,B,C.");
        }

        // Each setting must fit each model's context, and each given batch the memory, before a run starts, not
        // after minutes of other runs (a --memory-budget batch is checked against its measurement later).
        foreach (var (model, setting) in models.SelectMany(m => settings.Select(s => (m, s))))
        {
            try
            {
                foreach (var batch in batches ?? [1])
                {
                    Admission.Check(backend, model.Info, setting.PromptLength, setting.GenLength, batch, "give a smaller --batch or --memory-budget");
                }
            }
            catch (ArgumentException e)
            {
                throw new CliException($"{setting.Name} ({setting.PromptLength} prompt + {setting.GenLength} generated tokens): {e.Message}");
            }
        }

        var plannedBatches = batches ?? [1];
        var progress = BenchProgress.ForConsole(settings.Count * BenchRunner.RunsPerSetting(models.Count, repeats, budget is null ? plannedBatches.Length : 1));
        using var interrupt = new ConsoleInterrupt(); // Ctrl+C prints what the finished runs measured
        var runner = new BenchRunner(backend, models, repeats, seed, peaks, progress, interrupt.Token);
        var results = new List<BenchResult>();
        var pairs = new List<PairRatio>();
        try
        {
            foreach (var setting in settings.TakeWhile(_ => !interrupt.Requested))
            {
                var points = runner.Measure(setting, plannedBatches, budget);
                results.AddRange(points);
                var best = models.Select(m => points.Where(p => p.Model == m.Info.Name).Select(p => p.TokensPerSecond).DefaultIfEmpty().Max()).ToArray();
                if (arguments.Has("--pair") && models.Count == 2 && best.All(b => b > 0))
                {
                    pairs.Add(new PairRatio(models[0].Info.Name, models[1].Info.Name, setting, best[0] / best[1]));
                }
            }
        }
        finally
        {
            progress.Done();
        }

        BenchOutput.Write(format, results, pairs, peaks);
        if (interrupt.Requested)
        {
            Console.Error.WriteLine($"bt: bench interrupted: {(results.Count == 0 ? "no run finished" : "the results are from the runs that finished (medians of fewer repeats where one was cut short)")}.");
            return interrupt.ExitCode;
        }

        return 0;
    }

    private static List<ModelDescriptor> Models(Arguments arguments)
    {
        var names = new List<string>();
        if (arguments.Value("--model") is { } model)
        {
            names.Add(model);
        }

        if (arguments.Value("--pair") is { } pair)
        {
            var parts = pair.Split(':');
            names.AddRange(parts.Length == 2 ? parts : throw new CliException($"--pair must be FIRST:SECOND, got '{pair}'."));
        }

        if (arguments.Value("--sweep") is { } sweep)
        {
            names.AddRange(sweep.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        return names.Select(ModelCatalog.Find).ToList();
    }

    private static List<BenchSetting> Settings(Arguments arguments)
    {
        var prompt = arguments.Value("--prompt-len");
        var gen = arguments.Value("--gen-len");
        var setting = arguments.Value("--setting");
        if (prompt is not null || gen is not null)
        {
            if (setting is not null)
            {
                throw new CliException("give either --setting or --prompt-len/--gen-len, not both.");
            }

            var p = arguments.Int("--prompt-len", 128, min: 1);
            var g = arguments.Int("--gen-len", 128, min: 1);
            return [new BenchSetting($"{p}->{g}", p, g)];
        }

        return (setting ?? "all") switch
        {
            "prefill-heavy" => [BenchSetting.PrefillHeavy],
            "decode-heavy" => [BenchSetting.DecodeHeavy],
            "all" => [BenchSetting.PrefillHeavy, BenchSetting.DecodeHeavy],
            var other => throw new CliException($"--setting must be prefill-heavy, decode-heavy or all, got '{other}'."),
        };
    }

    private static int[] ParseBatches(string text) => text.Split(',', StringSplitOptions.TrimEntries)
        .Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b > 0
            ? b
            : throw new CliException($"--batch must be positive integers separated by commas, got '{text}'."))
        .ToArray();
}

/// <summary>Runs the measurements of one setting for every model, alternating models within each repeat.</summary>
/// <remarks>
/// Cancelling <paramref name="interrupt"/> stops the generate call under way: <see cref="Measure"/> then
/// returns the points that have at least one finished run, none while memory is still being measured.
/// </remarks>
internal sealed class BenchRunner(Backend backend, List<ModelDescriptor> descriptors, int repeats, ulong seed, MachinePeaks peaks, BenchProgress progress, CancellationToken interrupt)
{
    /// <summary>Generate calls per model before the measured ones: a warm-up, then batch 1 and 2 for memory per sample.</summary>
    private const int MemoryRuns = 3;

    /// <summary>Generate calls of one setting: per model, the memory runs and every batch of every repeat.</summary>
    public static int RunsPerSetting(int models, int repeats, int batchesPerModel) => models * (MemoryRuns + (repeats * batchesPerModel));

    public List<BenchResult> Measure(BenchSetting setting, int[] batches, long? budget)
    {
        var models = descriptors.Select(d => backend.Create(d, null, seed)).ToList();
        try
        {
            // Memory per sample = slope of peak memory (native, or device on a GPU) between batch 1 and 2
            // (paper §7), after a warm-up run.
            List<(long Slope, long Intercept)> perSample;
            try
            {
                perSample = models.Select(m => MemoryPerSample(m, setting)).ToList();
            }
            catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
            {
                return [];
            }
            var plan = models.Select((m, i) => budget is null ? batches : [LargestBatch(m.Info.Name, budget.Value, perSample[i])]).ToList();
            for (var m = 0; m < models.Count; m++)
            {
                Array.ForEach(plan[m], batch => CheckFits(models[m].Info.Name, batch, perSample[m]));
            }

            var times = models.Select(_ => new Dictionary<int, List<(double Total, GenerationTimings Timings)>>()).ToList();
            try
            {
                for (var repeat = 0; repeat < repeats; repeat++)
                {
                    for (var m = 0; m < models.Count; m++)
                    {
                        foreach (var batch in plan[m])
                        {
                            var timings = Run(models[m], setting, batch, (ulong)repeat, $"[{setting.Name}] {models[m].Info.Name} batch {batch}, repeat {repeat + 1}/{repeats}");
                            (times[m].TryGetValue(batch, out var list) ? list : times[m][batch] = []).Add((timings.Total.TotalSeconds, timings));
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
            {
                // Interrupted: report what finished.
            }

            return models.SelectMany((model, m) => times[m].Select(entry =>
            {
                var runs = entry.Value.OrderBy(t => t.Total).ToList();
                var median = runs[runs.Count / 2].Timings;
                var tokens = (double)entry.Key * setting.GenLength;
                var info = model.Info;
                return new BenchResult(
                    info.Name,
                    backend.Name,
                    setting,
                    entry.Key,
                    entry.Value.Count,
                    tokens / median.Total.TotalSeconds,
                    tokens / runs[^1].Total,
                    tokens / runs[0].Total,
                    median.Prefill.TotalSeconds,
                    median.Decode.TotalSeconds,
                    perSample[m].Slope,
                    info.KvCacheBytes(setting.PromptLength, setting.GenLength, entry.Key),
                    CostModel.Generation(info, setting.PromptLength, setting.GenLength, entry.Key, peaks));
            })).ToList();
        }
        finally
        {
            models.ForEach(m => m.Dispose());
        }
    }

    private (long Slope, long Intercept) MemoryPerSample(ILanguageModel model, BenchSetting setting)
    {
        // On the CPU a generate call allocates everything it holds per sample (KV caches for the full
        // length, activations for the largest call) by the time its second block is under way, so these
        // runs stop there: the same peaks in a fraction of the time. On a GPU the attention's partial sums
        // grow with the context, so they run to the end.
        int? stopAfter = backend.IsGpu ? null : 2 * model.Info.BlockLength;

        // A first run allocates what every batch then shares (the kernels' per-thread packing buffers),
        // so that it counts in neither peak below and the slope is per sample only.
        RunForMemory(model, setting, 1, 999, $"[{setting.Name}] {model.Info.Name} warm-up", stopAfter);
        // The slope is taken from the bytes asked for, the intercept from the bytes allocated (rounded to huge
        // pages): rounding is at most 2 MiB per buffer whatever the batch, not memory per sample.
        var peaks = new long[2];
        var requestedPeaks = new long[2];
        for (var batch = 1; batch <= 2; batch++)
        {
            var (before, requestedBefore) = (backend.CurrentBytes, backend.RequestedBytes);
            backend.ResetPeak();
            RunForMemory(model, setting, batch, 1000, $"[{setting.Name}] {model.Info.Name} memory at batch {batch}", stopAfter);
            peaks[batch - 1] = backend.PeakBytes - before;
            requestedPeaks[batch - 1] = backend.RequestedPeakBytes - requestedBefore;
        }

        // A sample holds at least its KV caches. The measured difference can fall below that when a worker
        // thread grows its scratch in the batch-1 run but not in the batch-2 one (which thread claims which
        // item is timing): a near-zero slope then let a huge budget pick a batch of billions, and the run
        // aborted with "Out of memory" (seen once in CI, under a parallel test load) instead of being refused.
        var kvPerSample = model.Info.KvCacheBytes(setting.PromptLength, setting.GenLength, 1);
        var slope = Math.Max(kvPerSample, requestedPeaks[1] - requestedPeaks[0]);
        return (slope, peaks[0] - slope);
    }

    private int LargestBatch(string model, long budget, (long Slope, long Intercept) memory)
    {
        var fits = (budget - backend.CurrentBytes - memory.Intercept) / memory.Slope;
        if (fits < 1)
        {
            throw new CliException($"not even batch 1 fits in the memory budget of {ByteText.Format(budget)}: {model} at batch 1 needs about {ByteText.Format(backend.CurrentBytes + memory.Intercept + memory.Slope)}, {ByteText.Format(backend.CurrentBytes)} of it the loaded weights.");
        }

        return (int)Math.Min(int.MaxValue, fits >= 16 ? fits / 8 * 8 : fits);
    }

    /// <summary>
    /// Refuses a batch whose measured memory exceeds what the backend has, before running it: the CPU would
    /// otherwise abort with "Out of memory" (or swap) part-way through a long benchmark.
    /// </summary>
    private void CheckFits(string model, int batch, (long Slope, long Intercept) memory)
    {
        var need = backend.CurrentBytes + memory.Intercept + (batch * memory.Slope);
        if (need > backend.CapacityBytes)
        {
            throw new CliException($"batch {batch} of {model} would need about {ByteText.Format(need)} ({ByteText.Format(memory.Slope)} per sample, measured; weights included), "
                + $"more than the {ByteText.Format(backend.CapacityBytes)} of {(backend.IsGpu ? "device " : string.Empty)}memory here: give a smaller --batch or --memory-budget.");
        }
    }

    private GenerationTimings Run(ILanguageModel model, BenchSetting setting, int batch, ulong promptSeed, string what)
    {
        progress.StartRun(what, setting.GenLength);
        var generator = backend.Generator(model, copyLogits: false);
        generator.Generate(Prompts(model, setting, batch, promptSeed), Options(setting), progress.Callback, interrupt);
        return generator.LastTimings;
    }

    /// <summary>A generate call made for its peak memory only: cancelled once sequence 0 has <paramref name="stopAfter"/> tokens (null: run to the end).</summary>
    private void RunForMemory(ILanguageModel model, BenchSetting setting, int batch, ulong promptSeed, string what, int? stopAfter)
    {
        progress.StartRun(what, Math.Min(setting.GenLength, stopAfter ?? setting.GenLength));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(interrupt);
        var seen = 0;
        var show = progress.Callback;
        try
        {
            backend.Generator(model, copyLogits: false).Generate(Prompts(model, setting, batch, promptSeed), Options(setting), (sequence, token, logits) =>
            {
                show?.Invoke(sequence, token, logits);
                if (sequence == 0 && ++seen == stopAfter)
                {
                    stop.Cancel();
                }
            }, stop.Token);
        }
        catch (OperationCanceledException) when (!interrupt.IsCancellationRequested)
        {
            // Stopped by this method, not by an interrupt, which goes on to Measure.
        }
    }

    /// <summary>Uniformly random prompt ids (paper §7), the same for the same seed.</summary>
    private static int[][] Prompts(ILanguageModel model, BenchSetting setting, int batch, ulong seed)
    {
        var random = new SplitMix64(seed * 7919 + 17);
        return Enumerable.Range(0, batch)
            .Select(_ => Enumerable.Range(0, setting.PromptLength).Select(_ => (int)(random.Next() % (ulong)model.Info.VocabSize)).ToArray())
            .ToArray();
    }

    /// <summary>Greedy (the generator's default sampling), EOS disabled so every run produces the full length.</summary>
    private static GenerationOptions Options(BenchSetting setting) => new() { MaxNewTokens = setting.GenLength, StopAtEos = false };
}
