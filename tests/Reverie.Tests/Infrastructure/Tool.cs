using System.Diagnostics;

namespace Reverie.Tests.Infrastructure;

/// <summary>Runs a system tool the tests use as a peer or a helper (ffmpeg, ffprobe, sbatch ...), bounded in time.</summary>
public static class Tool
{
    /// <summary>Runs <paramref name="program"/> to the end (at most two minutes, then it is killed and the test fails); its exit code, standard output and standard error.</summary>
    public static (int Code, string Out, string Err) Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2))) { p.Kill(true); throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in 2 minutes"); }
        return (p.ExitCode, o.Result, e.Result);
    }
}
