using BlockTransformer.Cli;

namespace BlockTransformer.Tests;

/// <summary>`bt bench`'s progress: a bar over all runs on a terminal, one line per run otherwise.</summary>
public class BenchProgressTests
{
    private const string Rewrite = "\r\u001b[K";

    [Fact]
    public void TerminalBarCountsFinishedRunsAndTheRunningOnesTokens()
    {
        var output = new StringWriter();
        var progress = new BenchProgress(4, output, terminal: true, TimeSpan.Zero, width: 200);
        progress.StartRun("[s] m warm-up", genLength: 8);
        Assert.Matches(@"^░{24}   0% · run 1/4 · token 0/8 · \d+:\d\d · \[s\] m warm-up$", LastLine(output));

        for (var step = 0; step < 4; step++)
        {
            progress.Token(0, 7, default);
            progress.Token(1, 7, default); // other sequences of the batch do not count
        }

        // (0 runs + 4/8 tokens) / 4 runs = 12.5%: 3 of 24 cells.
        Assert.Matches(@"^█{3}░{21}  12% · run 1/4 · token 4/8 · \d+:\d\d · \[s\] m warm-up$", LastLine(output));
        progress.StartRun("[s] m batch 2, repeat 1/1", genLength: 8);
        Assert.Matches(@"^█{6}░{18}  25% · run 2/4 · token 0/8 · \d+:\d\d · \[s\] m batch 2, repeat 1/1$", LastLine(output));
        progress.Done();
        Assert.EndsWith("repeat 1/1" + Rewrite, output.ToString());
    }

    [Fact]
    public void LongLinesAreCutToTheTerminalWidth()
    {
        var output = new StringWriter();
        new BenchProgress(1, output, terminal: true, TimeSpan.Zero, width: 30).StartRun(new string('x', 100), 4);
        Assert.Equal(new string('░', 24) + "   0% ", LastLine(output));
    }

    [Fact]
    public void PlainOutputIsOneLinePerRunWithoutTokenUpdates()
    {
        var output = new StringWriter();
        var progress = new BenchProgress(2, output, terminal: false, TimeSpan.Zero, int.MaxValue);
        progress.StartRun("first", 4);
        progress.Token(0, 1, default);
        progress.StartRun("second", 4);
        progress.Done();
        Assert.Equal($"run 1/2: first{Environment.NewLine}run 2/2: second{Environment.NewLine}", output.ToString());
    }

    private static string LastLine(StringWriter output)
    {
        var text = output.ToString();
        Assert.StartsWith(Rewrite, text);
        return text[(text.LastIndexOf(Rewrite, StringComparison.Ordinal) + Rewrite.Length)..];
    }
}
