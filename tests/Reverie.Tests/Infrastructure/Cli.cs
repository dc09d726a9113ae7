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
    public (int Code, string Out, string Err) Run(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["REVERIE_CACHE"] = Cache;
        psi.Environment["REVERIE_REGISTRY"] = Registry;
        psi.Environment["COLUMNS"] = "200";
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException("reverie did not finish in 5 minutes"); }
        return (p.ExitCode, o.Result, e.Result);
    }

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
