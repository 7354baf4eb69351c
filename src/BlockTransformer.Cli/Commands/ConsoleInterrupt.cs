using System.Runtime.InteropServices;

namespace BlockTransformer.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM (what `timeout` and job schedulers send) as a cancellation token for a long
/// command: the first signal cancels <see cref="Token"/> and keeps the process alive, so that the command can
/// stop its generate call and print what it has; a second one ends the process as usual.
/// </summary>
internal sealed class ConsoleInterrupt : IDisposable
{
    private readonly CancellationTokenSource source = new();
    private readonly PosixSignalRegistration terminate;

    public ConsoleInterrupt()
    {
        Console.CancelKeyPress += OnCancelKeyPress;
        terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerminate);
    }

    public CancellationToken Token => source.Token;

    public bool Requested => source.IsCancellationRequested;

    /// <summary>The exit code of a command ended by the signal, as shells report it: 130 (128 + SIGINT) or 143 (128 + SIGTERM).</summary>
    public int ExitCode { get; private set; }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        terminate.Dispose();
        source.Dispose();
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e) => e.Cancel = Request(130);

    private void OnTerminate(PosixSignalContext context) => context.Cancel = Request(143);

    /// <summary>Cancels the token on the first signal (true: keep running to print); false on a later one.</summary>
    private bool Request(int code)
    {
        if (source.IsCancellationRequested)
        {
            return false;
        }

        ExitCode = code;
        source.Cancel();
        return true;
    }
}
