using System.Diagnostics;

namespace Reverie.Tests.Infrastructure;

/// <summary>torchvision models with seeded random weights, exported to ONNX by Debian's PyTorch (tests/scripts/export_torchvision.py).</summary>
public static class TorchvisionExports
{
    static readonly object Gate = new();
    public static string Dir { get; } = Path.Combine(Path.GetTempPath(), "reverie-torchvision-exports-v2");

    /// <summary>Path of NAME exported at OPSET, exporting it first when needed.</summary>
    public static string Get(string name, int opset)
    {
        string path = Path.Combine(Dir, $"{name}_op{opset}.onnx");
        lock (Gate)
        {
            if (File.Exists(path)) return path;
            // The test processes of scripts/test.sh share this folder: one exports, the others wait for it.
            using var _ = CrossProcessLock();
            if (File.Exists(path)) return path;
            var (code, output) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "export_torchvision.py"), Dir, $"{name}:{opset}");
            if (code != 0 || !File.Exists(path)) throw new InvalidOperationException($"Export of {name} failed ({code}): {output}");
            return path;
        }
    }

    /// <summary>An exclusive lock on Dir/.lock held by this process until disposed (waits up to 30 minutes for another's).</summary>
    static FileStream CrossProcessLock()
    {
        Directory.CreateDirectory(Dir);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try { return new FileStream(Path.Combine(Dir, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (clock.Elapsed < TimeSpan.FromMinutes(30)) { Thread.Sleep(200); }
        }
    }
}

/// <summary>Runs Debian's python3 (which has python3-torch), not whatever python3 is first on PATH.</summary>
public static class Python
{
    public static string Executable => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    public static (int Code, string Output) Run(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "2";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
