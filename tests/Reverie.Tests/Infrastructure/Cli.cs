using System.Diagnostics;

namespace Reverie.Tests.Infrastructure;

/// <summary>Runs the real `reverie` CLI as a child process, with its own cache and registry.</summary>
public sealed class CliHost : IDisposable
{
    public TempDir Home { get; } = new();
    public string Cache => Path.Combine(Home.Path, "cache");
    public string Registry => Path.Combine(Home.Path, "models.json");

    public (int Code, string Out, string Err) Run(params string[] args) =>
        Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), .. args]);

    /// <summary>Runs any program with this host's cache and registry.</summary>
    public (int Code, string Out, string Err) Run(string program, string[] args) => Run(program, args, TimeSpan.FromMinutes(5));

    /// <summary>Runs any program with this host's cache and registry, killed after <paramref name="timeout"/>.</summary>
    public (int Code, string Out, string Err) Run(string program, string[] args, TimeSpan timeout)
    {
        using var p = Start(program, args);
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout)) { p.Kill(true); throw new TimeoutException($"reverie {string.Join(' ', args.Skip(1).Take(6))} did not finish in {timeout.TotalSeconds:0} s"); }
        return (p.ExitCode, o.Result, e.Result);
    }

    /// <summary>
    /// Runs the CLI inside this process, with this host's cache and registry: the same code as the
    /// <c>reverie</c> executable (its Main is one call to <see cref="Reverie.Cli.ReverieCli.RunAsync"/>)
    /// without the half second each child process spends starting .NET and libtorch. Cancelled as by
    /// Ctrl+C after <paramref name="timeout"/>, which then throws. Tests run one at a time
    /// (Infrastructure/Serial.cs), so the environment variables it sets for the run are not seen by another test.
    /// </summary>
    public (int Code, string Out, string Err) RunInProcess(string[] args, TimeSpan timeout)
    {
        string? cache = Environment.GetEnvironmentVariable("REVERIE_CACHE"), registry = Environment.GetEnvironmentVariable("REVERIE_REGISTRY");
        Environment.SetEnvironmentVariable("REVERIE_CACHE", Cache);
        Environment.SetEnvironmentVariable("REVERIE_REGISTRY", Registry);
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            using var cts = new CancellationTokenSource(timeout);
            // On a thread of its own: a command whose action is synchronous would otherwise run inside this call, past any timeout.
            var run = Task.Run(() => Reverie.Cli.ReverieCli.RunAsync(args, TextWriter.Synchronized(o), TextWriter.Synchronized(e), cts.Token));
            if (!run.Wait(timeout + TimeSpan.FromMinutes(1)))
                throw new TimeoutException($"reverie {string.Join(' ', args.Take(6))} did not stop within a minute of its cancellation");
            if (cts.IsCancellationRequested) throw new TimeoutException($"reverie {string.Join(' ', args.Take(6))} did not finish in {timeout.TotalSeconds:0} s");
            return (run.Result, o.ToString(), e.ToString());
        }
        finally
        {
            Environment.SetEnvironmentVariable("REVERIE_CACHE", cache);
            Environment.SetEnvironmentVariable("REVERIE_REGISTRY", registry);
        }
    }

    /// <summary>
    /// Runs the CLI and samples its peak resident memory (VmHWM, a high-water mark, so the last sample
    /// before exit is the peak up to then) every 20 ms.
    /// </summary>
    public (int Code, string Out, string Err, long PeakBytes) RunMeasured(params string[] args)
    {
        using var p = Start("dotnet", [Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), .. args]);
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        long peak = 0;
        var sw = Stopwatch.StartNew();
        while (!p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(5))
        {
            try
            {
                peak = Math.Max(peak, ProcStatus.Bytes(p.Id.ToString(), "VmHWM"));
            }
            catch (Exception x) when (x is IOException or InvalidOperationException) { } // gone, or exiting (a zombie's status has no Vm lines)
            Thread.Sleep(20);
        }
        if (!p.WaitForExit(TimeSpan.FromSeconds(10))) { p.Kill(true); throw new TimeoutException("reverie did not finish in 5 minutes"); }
        return (p.ExitCode, o.Result, e.Result, peak);
    }

    /// <summary>
    /// Starts the CLI, sends <paramref name="signal"/> (2 SIGINT, 15 SIGTERM) once <paramref name="ready"/>
    /// has seen its standard error (or after <paramref name="timeout"/>), and waits for it to exit.
    /// </summary>
    public (int Code, string Out, string Err, double SecondsAfterSignal) RunAndSignal(int signal, Func<string, bool> ready, TimeSpan timeout, params string[] args)
    {
        using var p = Start("env", [.. DefaultSignals, "dotnet", Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), .. args]);
        var err = new System.Text.StringBuilder();
        var lockObj = new object();
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lockObj) err.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        var o = p.StandardOutput.ReadToEndAsync();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout && !p.HasExited)
        {
            string now; lock (lockObj) now = err.ToString();
            if (ready(now)) break;
            Thread.Sleep(20);
        }
        var sent = Stopwatch.StartNew();
        if (!p.HasExited) Kill(p.Id, signal);
        if (!p.WaitForExit(TimeSpan.FromMinutes(2))) { p.Kill(true); throw new TimeoutException("reverie did not stop within 2 minutes of the signal"); }
        p.WaitForExit();
        lock (lockObj) return (p.ExitCode, o.Result, err.ToString(), sent.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Arguments to `env` that give the child the default SIGINT and SIGTERM handling. A test run
    /// started in the background (`cmd &amp;` in a script, nohup) ignores SIGINT, children inherit that, and
    /// a CLI that ignores SIGINT (as it should, then) never sees the test's Ctrl+C.
    /// </summary>
    public static readonly string[] DefaultSignals = ["--default-signal=INT,TERM"];

    /// <summary>Starts a program with this host's cache and registry, its output redirected and its input closed.</summary>
    Process Start(string program, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["REVERIE_CACHE"] = Cache;
        psi.Environment["REVERIE_REGISTRY"] = Registry;
        psi.Environment["COLUMNS"] = "200";
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    /// <summary>Installs ../shared/models/bvlc_googlenet.onnx as the googlenet weights (offline install).</summary>
    public CliHost WithGoogLeNet()
    {
        var (code, _, err) = Run("models", "add", "googlenet", Paths.GoogLeNet, "--force");
        if (code != 0) throw new InvalidOperationException(err);
        return this;
    }

    public void Dispose() => Home.Dispose();
}

/// <summary>One CLI home with googlenet installed, shared by a test class.</summary>
public sealed class GoogLeNetCli : IDisposable
{
    public CliHost Host { get; } = new CliHost().WithGoogLeNet();
    public void Dispose() => Host.Dispose();
}

/// <summary>Memory figures of a process from /proc/PID/status (VmRSS, VmHWM ...), in bytes.</summary>
public static class ProcStatus
{
    /// <summary>The field of <c>/proc/<paramref name="pid"/>/status</c> ("self" for this process), in bytes.</summary>
    public static long Bytes(string pid, string field) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal)).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) * 1024; // "VmRSS:\t12345678 kB": a tab, and no space once the figure is 8 digits
}
