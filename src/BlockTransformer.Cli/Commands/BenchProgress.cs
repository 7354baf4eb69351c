using System.Diagnostics;
using System.Globalization;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>
/// `bt bench`'s progress on stderr, over all the generate calls it will make (<paramref name="totalRuns"/>).
/// On a terminal: one line rewritten in place at most once per <paramref name="redraw"/> and cut to
/// <paramref name="width"/> (a line that wraps can no longer be rewritten): a bar of the work done
/// (finished runs plus the running one's share of its tokens), which run of how many, its token count,
/// the time so far and, last because a narrow terminal cuts it, what the run measures. Otherwise (a log,
/// CI): one plain line per run, no bar. Public (alone in this assembly) so that the tests can drive it
/// with a <see cref="StringWriter"/>.
/// </summary>
public sealed class BenchProgress(int totalRuns, TextWriter output, bool terminal, TimeSpan redraw, int width)
{
    private const int BarWidth = 24;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly Stopwatch sinceDraw = new();
    private int run;
    private string status = string.Empty;
    private int tokens;
    private int genLength;

    /// <summary>Progress for a real terminal when stderr is one, redrawn ten times a second.</summary>
    public static BenchProgress ForConsole(int totalRuns) => Console.IsErrorRedirected
        ? new(totalRuns, Console.Error, terminal: false, TimeSpan.Zero, int.MaxValue)
        : new(totalRuns, Console.Error, terminal: true, TimeSpan.FromMilliseconds(100), TerminalWidth() - 1);

    private static int TerminalWidth()
    {
        try
        {
            return Console.WindowWidth is > 20 and var width ? width : 80;
        }
        catch (IOException)
        {
            return 80; // no size to be had (stdout redirected on some terminals): assume the classic width
        }
    }

    public void StartRun(string what, int genLength)
    {
        run++;
        status = what;
        tokens = 0;
        this.genLength = genLength;
        if (terminal)
        {
            Draw();
        }
        else
        {
            output.WriteLine($"run {run}/{totalRuns}: {what}");
        }
    }

    /// <summary>What a generate call gets as its token callback: <see cref="Token"/> on a terminal, none otherwise (no bar to advance, nothing added to the decode loop).</summary>
    public TokenCallback? Callback => terminal ? Token : null;

    /// <summary>A generate call's token callback: every sequence of a bench run generates as many tokens, so sequence 0 counts them.</summary>
    public void Token(int sequence, int token, ReadOnlySpan<float> logits)
    {
        if (sequence != 0)
        {
            return;
        }

        tokens++;
        if (terminal && sinceDraw.Elapsed >= redraw)
        {
            Draw();
        }
    }

    /// <summary>Clears the line on a terminal, so that results start on a clean one.</summary>
    public void Done()
    {
        if (terminal)
        {
            output.Write("\r\u001b[K");
        }
    }

    private void Draw()
    {
        var done = (run - 1 + ((double)tokens / Math.Max(1, genLength))) / totalRuns;
        var filled = (int)Math.Clamp(done * BarWidth, 0, BarWidth);
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{new string('█', filled)}{new string('░', BarWidth - filled)} {(int)(done * 100),3}% · run {run}/{totalRuns} · token {tokens}/{genLength} · {clock.Elapsed:m\\:ss} · {status}");
        output.Write($"\r\u001b[K{(line.Length > width ? line[..width] : line)}");
        output.Flush();
        sinceDraw.Restart();
    }
}
