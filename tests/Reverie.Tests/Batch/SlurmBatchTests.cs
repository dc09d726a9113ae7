using System.Diagnostics;
using System.Text.RegularExpressions;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Batch;

/// <summary>
/// A one-node Slurm cluster on this machine (Debian's slurm-wlm and munge, started by
/// scripts/slurm-local.sh and stopped after), and a microscope run on it as a job array.
/// </summary>
public sealed class LocalSlurm : IDisposable
{
    /// <summary>A fixed folder, so that a cluster left by a test run that was killed is stopped by the next start.</summary>
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "reverie-slurm-test");
    readonly string? _previousConf = Environment.GetEnvironmentVariable("SLURM_CONF");

    public LocalSlurm()
    {
        var (code, output) = Run("bash", Path.Combine(Paths.RepoRoot, "scripts", "slurm-local.sh"), "start", Dir);
        if (code != 0) throw new InvalidOperationException("the local Slurm cluster did not start: " + output);
        // sbatch, squeue, scancel and the CLI's `batch slurm --submit` all find the cluster through this.
        Environment.SetEnvironmentVariable("SLURM_CONF", Path.Combine(Dir, "slurm.conf"));
    }

    /// <summary>Runs a program with the cluster's configuration; its exit code and output (both streams).</summary>
    public static (int Code, string Output) Run(string program, params string[] args)
    {
        var (code, o, e) = Tool.Run(program, args);
        return (code, o + e);
    }

    /// <summary>Waits (bounded) until <paramref name="done"/> holds, polling twice a second.</summary>
    public static void WaitFor(Func<bool> done, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}");
            Thread.Sleep(500);
        }
    }

    /// <summary>squeue's states of a job's array tasks, e.g. "RUNNING"; empty when none is left.</summary>
    public static string[] States(string job) =>
        Run("squeue", "-h", "-r", "-j", job, "-o", "%T").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public void Dispose()
    {
        Run("scancel", "--full", "--partition", "reverie");
        Run("bash", Path.Combine(Paths.RepoRoot, "scripts", "slurm-local.sh"), "stop", Dir);
        Environment.SetEnvironmentVariable("SLURM_CONF", _previousConf);
    }
}

public partial class SlurmBatchTests(ITestOutputHelper log) : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _dir = new();
    public void Dispose() { _cli.Dispose(); _dir.Dispose(); }

    [GeneratedRegex(@"submitted: job (\d+)")]
    private static partial Regex Submitted();

    /// <summary>
    /// A microscope of 32 channels of the built-in fashion model as a Slurm array of 4 tasks: one task
    /// is cancelled while it runs and its index resubmitted; the merged product is identical, file
    /// for file, to the same manifest run on one machine with --shard 0/1.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void AMicroscopeOnSlurmWithACancelledTaskResubmittedMergesToTheOneMachineProduct()
    {
        using var slurm = new LocalSlurm();
        string m = BatchTests.PlanMicroscope(_cli, _dir.File("shared"), "0..31", 400);
        string local = BatchTests.CopyManifest(m, _dir.File("local"));

        var submit = _cli.Run("batch", "slurm", m, "--tasks", "4", "--submit");
        Assert.True(submit.Code == 0, submit.Err + submit.Out);
        string job = Submitted().Match(submit.Out).Groups[1].Value;
        log.WriteLine($"job {job}: {string.Join(", ", LocalSlurm.States(job))}");

        // Cancel task 1 once it has made an item (its items are 1, 5, 9 ... of the manifest).
        string items = Path.Combine(_dir.File("shared"), "out", "items");
        LocalSlurm.WaitFor(() => LocalSlurm.Run("squeue", "-h", "-j", $"{job}_1", "-o", "%T").Output.Trim() == "RUNNING", TimeSpan.FromMinutes(3), "task 1 to run");
        int doneBefore = Directory.EnumerateFiles(items, "*.done").Count();
        LocalSlurm.WaitFor(() => Directory.EnumerateFiles(items, "*.done").Count() >= doneBefore + 2, TimeSpan.FromMinutes(2), "two more items");
        var cancel = LocalSlurm.Run("scancel", $"{job}_1");
        Assert.True(cancel.Code == 0, cancel.Output);
        LocalSlurm.WaitFor(() => LocalSlurm.States(job).Length == 0, TimeSpan.FromMinutes(5), "the array to end");

        var status = _cli.Run("batch", "status", m);
        log.WriteLine(status.Out);
        Assert.Equal(1, status.Code); // task 1's items are not all done
        Assert.Contains("items not done", status.Out);

        var again = LocalSlurm.Run("sbatch", "--parsable", "--array=1", Path.ChangeExtension(m, ".sbatch"));
        Assert.True(again.Code == 0, again.Output);
        string job2 = again.Output.Trim().Split(';')[0];
        LocalSlurm.WaitFor(() => LocalSlurm.States(job2).Length == 0, TimeSpan.FromMinutes(5), "the resubmitted task to end");
        foreach (var f in Directory.EnumerateFiles(Path.Combine(_dir.File("shared"), "out", "logs")).Order())
            log.WriteLine($"{Path.GetFileName(f)}: {File.ReadAllLines(f).LastOrDefault(l => l.StartsWith("shard", StringComparison.Ordinal) || l.Contains("interrupt")) ?? "(no summary)"}");
        Assert.Equal(0, _cli.Run("batch", "status", m).Code);
        var merge = _cli.Run("batch", "merge", m);
        Assert.True(merge.Code == 0, merge.Err);

        var one = _cli.Run("batch", "run", local, "--shard", "0/1");
        Assert.True(one.Code == 0, one.Err);
        Assert.Equal(0, _cli.Run("batch", "merge", local).Code);
        var onSlurm = BatchTests.Hashes(Path.Combine(_dir.File("shared"), "out", "microscope"));
        var onOne = BatchTests.Hashes(Path.Combine(_dir.File("local"), "out", "microscope"));
        Assert.Equal(32 + 2, onSlurm.Count);
        Assert.Equal(onOne, onSlurm);
        Assert.Equal(BatchTests.Hashes(Path.Combine(_dir.File("local"), "out", "items")), BatchTests.Hashes(items));
    }
}
