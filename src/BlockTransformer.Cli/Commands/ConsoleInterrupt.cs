namespace BlockTransformer.Cli;

/// <summary>
/// Ctrl+C (SIGINT) as a cancellation token for a long command: the first press cancels <see cref="Token"/>
/// and keeps the process alive, so that the command can stop its generate call and print what it has;
/// a second press ends the process as usual.
/// </summary>
internal sealed class ConsoleInterrupt : IDisposable
{
    /// <summary>The exit code of a command ended by SIGINT, as shells report it (128 + 2).</summary>
    public const int ExitCode = 130;

    private readonly CancellationTokenSource source = new();

    public ConsoleInterrupt() => Console.CancelKeyPress += OnCancelKeyPress;

    public CancellationToken Token => source.Token;

    public bool Requested => source.IsCancellationRequested;

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        source.Dispose();
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = !source.IsCancellationRequested;
        source.Cancel();
    }
}
