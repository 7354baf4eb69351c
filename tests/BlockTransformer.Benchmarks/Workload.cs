using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace BlockTransformer.Benchmarks;

/// <summary>The FLOPs and the bytes of weights or KV cache that one call of a benchmark method reads.</summary>
public readonly record struct Work(double Flops, double Bytes);

/// <summary>A benchmark parameter that knows the work each of its benchmark methods does per call.</summary>
public interface IWorkload
{
    Work For(string benchmarkMethod);
}

/// <summary>Adds GFLOP/s and GB/s columns, from the <see cref="IWorkload"/> parameter and the mean time.</summary>
public sealed class WorkloadConfig : ManualConfig
{
    public WorkloadConfig()
    {
        AddColumn(new WorkloadColumn("GFLOP/s", w => w.Flops), new WorkloadColumn("GB/s", w => w.Bytes));
        // Case names such as "block_main_b4_85 token.up 3072x768 ×64" would be cut at 20 characters.
        SummaryStyle = SummaryStyle.Default.WithMaxParameterColumnWidth(60);
    }
}

/// <summary>Work per call ÷ mean time per call: FLOPs or bytes per nanosecond is G per second.</summary>
internal sealed class WorkloadColumn(string name, Func<Work, double> amount) : IColumn
{
    public string Id => nameof(WorkloadColumn) + name;

    public string ColumnName => name;

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => $"{name} achieved: work per call (from the case's shape) divided by the mean time";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var workload = benchmarkCase.Parameters.Items.Select(p => p.Value).OfType<IWorkload>().FirstOrDefault();
        var meanNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (workload is null || meanNanoseconds is not > 0)
        {
            return "-";
        }

        var perCall = amount(workload.For(benchmarkCase.Descriptor.WorkloadMethod.Name));
        return (perCall / meanNanoseconds.Value).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;
}
