using System.Diagnostics;
using Reverie.Imaging;
using Reverie.Models.Registry;
using Reverie.Objectives;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Trust;

/// <summary>
/// Issue 36's probe (defects 1–3): the one reader for paths from outside. Every file read of text,
/// JSON, vectors, labels, manifests, registries and recipes goes through <see cref="InputFile"/>;
/// these tests pin what it refuses, and that the readers built on it refuse the same.
/// </summary>
public sealed class InputFileTests : IDisposable
{
    readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    static string Fifo(string path)
    {
        using var p = Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }

    /// <summary>Runs <paramref name="read"/> on a thread and fails if it has not ended in 10 s (a pipe would block it for ever).</summary>
    static BadInputException RefusedQuickly(Action read)
    {
        var task = Task.Run(() => Assert.Throws<BadInputException>(read));
        Assert.True(task.Wait(TimeSpan.FromSeconds(10)), "the read blocked instead of refusing");
        return task.Result;
    }

    [Fact]
    public void P03_DevicesAndNamedPipesAreRefusedBeforeTheyAreOpened()
    {
        string fifo = Fifo(_tmp.File("pipe"));
        foreach (var path in new[] { "/dev/zero", "/dev/full", fifo, "/proc/self/fd/0" })
        {
            var e = RefusedQuickly(() => InputFile.ReadAllText(path, "direction file", 16 << 20));
            Assert.Contains("not a regular file", e.Message);
        }
        // The readers built on it: a direction vector, a labels file, a recipe, a batch manifest, a model file.
        RefusedQuickly(() => Labels.Load("/dev/zero"));
        RefusedQuickly(() => Labels.Load(fifo));
        RefusedQuickly(() => Reverie.Recipes.Recipe.Load(fifo + ".json"));
        RefusedQuickly(() => Reverie.Batch.BatchManifest.Load("/dev/zero"));
        RefusedQuickly(() => Reverie.Models.Onnx.OnnxGraph.Load(fifo));
        var folder = RefusedQuickly(() => InputFile.ReadAllText(_tmp.Path, "labels file", 100));
        Assert.Contains("is a folder", folder.Message);
    }

    [Fact]
    public void P03_AFileIsReadOnlyUpToItsLimitEvenWhenItsSizeSaysLess()
    {
        string big = _tmp.File("big.txt");
        File.WriteAllText(big, new string('1', 5000));
        Assert.Equal(5000, InputFile.ReadAllText(big, "direction file", 5000).Length);
        Assert.Contains("larger than the 4.9 kB", Assert.Throws<BadInputException>(() => InputFile.ReadAllText(big, "direction file", 4999)).Message);
        // /proc files report a size of 0 and then give data: the count of bytes read decides.
        string environ = $"/proc/{Environment.ProcessId}/environ";
        Assert.Equal(0, new FileInfo(environ).Length);
        Assert.Contains("larger than", Assert.Throws<BadInputException>(() => InputFile.ReadAllBytes(environ, "labels file", 4)).Message);
    }

    [Fact]
    public void P01_AConfinedReadRefusesOutsideFilesAndLinksAlikeAndSaysNothingOfExistence()
    {
        string root = Directory.CreateDirectory(_tmp.File("data")).FullName;
        string inside = Path.Combine(root, "v.txt");
        File.WriteAllText(inside, "1, 2, 3");
        File.CreateSymbolicLink(Path.Combine(root, "passwd"), "/etc/passwd");
        Directory.CreateSymbolicLink(Path.Combine(root, "etc"), "/etc");
        using (InputFile.Confine([root]))
        {
            Assert.Equal("1, 2, 3", InputFile.ReadAllText(inside, "direction file", 100));
            string[] refused = ["/etc/passwd", "/etc/no-such-file", Path.Combine(root, "passwd"), Path.Combine(root, "etc", "hostname"),
                Path.Combine(root, "..", "..", "etc", "passwd"), "/proc/self/environ"];
            var messages = refused.Select(p => Assert.Throws<BadInputException>(() => InputFile.ReadAllText(p, "direction file", 1 << 20)).Message).ToList();
            Assert.All(messages, m => Assert.Contains("lies outside the studio's data folder", m));
            Assert.All(messages, m => Assert.DoesNotContain("root:", m));
            Assert.All(messages, m => Assert.DoesNotContain("does not exist", m));
            // The objective language reads its direction files through it.
            Assert.Contains("lies outside", Assert.Throws<BadInputException>(() => ObjectiveReads("/etc/passwd")).Message);
        }
        // Unconfined (the command line), an existing file is read and a missing one is named as missing.
        Assert.Contains("root", InputFile.ReadAllText("/etc/passwd", "direction file", 1 << 20));
        Assert.Contains("does not exist", Assert.Throws<BadInputException>(() => InputFile.ReadAllText("/etc/no-such-file", "direction file", 100)).Message);
    }

    /// <summary>Parses a direction objective on the embedded textures model.</summary>
    static void ObjectiveReads(string file)
    {
        using var net = Reverie.Training.Checkpoint.LoadEmbedded("textures");
        ObjectiveLanguage.Parse(net, $"direction:conv6@{file}");
    }
}
