namespace Reverie.Tests.Infrastructure;

/// <summary>Locations of the shared test data (../shared beside the project root).</summary>
public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    static string FindRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "Reverie.slnx"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Reverie.slnx).");
    }

    public static string Shared => Environment.GetEnvironmentVariable("REVERIE_SHARED") is { Length: > 0 } s ? s : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
    public static string Models => Path.Combine(Shared, "models");
    public static string Samples => Path.Combine(Shared, "samples");
    public static string OnnxLight => Path.Combine(Shared, "onnx-light");
    public static string GoogLeNet => Path.Combine(Models, "bvlc_googlenet.onnx");
    public static string Sample(string name) => Path.Combine(Samples, name);
    public static string OnnxNodeTests => "/usr/share/libonnx-testdata/data/node";

    /// <summary>
    /// Writes a sample photo shrunk to <paramref name="height"/>×<paramref name="width"/> at
    /// <paramref name="path"/> (a small, fast input for CLI and trust tests) and returns the path.
    /// </summary>
    public static string SmallPhoto(string path, int height = 40, int width = 60, string sample = "coffee.png")
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        Reverie.Imaging.ImageIO.Save(Reverie.Imaging.ImageIO.Resize(Reverie.Imaging.ImageIO.Load(Sample(sample)), height, width), path);
        return path;
    }

    /// <summary>A fresh temporary folder, deleted by Dispose.</summary>
    public static TempDir Temp() => new();
}

public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "reverie-test-" + Guid.NewGuid().ToString("N"));
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

/// <summary>Raw little-endian float32 files that the Python helpers write.</summary>
public static class RawFloats
{
    public static float[] Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var f = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, f, 0, bytes.Length);
        return f;
    }
}
