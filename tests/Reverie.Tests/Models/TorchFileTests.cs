using System.IO.Compression;
using System.Text.Json;
using Reverie.Models.Torch;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Models;

/// <summary>The files Debian's PyTorch writes for these tests, made once per class.</summary>
public sealed class TorchFixtures : IDisposable
{
    readonly TempDir dir = new();
    public string Path { get; }
    public TorchFixtures()
    {
        var (code, text) = Python.Run(System.IO.Path.Combine(Paths.RepoRoot, "tests", "scripts", "save_state_dicts.py"), dir.Path);
        if (code != 0) throw new InvalidOperationException(text);
        Path = dir.Path;
    }
    public void Dispose() => dir.Dispose();
}

/// <summary>PyTorch weights files read by the safe unpickler, against what Debian's PyTorch wrote.</summary>
public class TorchFileTests(TorchFixtures fixtures, ITestOutputHelper output) : IClassFixture<TorchFixtures>
{
    string Fixtures() => fixtures.Path;

    [Theory]
    [InlineData("zip_float32.pth", 0.0)]
    [InlineData("legacy_float32.pth", 0.0)]
    [InlineData("zip_float16.pth", 1e-3)]
    [InlineData("legacy_float16.pth", 1e-3)]
    [InlineData("zip_bfloat16.pth", 8e-3)]
    [InlineData("legacy_bfloat16.pth", 8e-3)]
    [InlineData("checkpoint.pth", 0.0)]
    public void ReadsWhatPyTorchWrote(string file, double rtol)
    {
        string d = Fixtures();
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(d, "manifest.json"))).RootElement;
        var tensors = TorchFile.Load(Path.Combine(d, file));
        string prefix = file == "checkpoint.pth" ? "state_dict." : "";
        foreach (var entry in manifest.EnumerateObject())
        {
            Assert.True(tensors.ContainsKey(prefix + entry.Name), $"{file} lacks {entry.Name}; has {string.Join(", ", tensors.Keys)}");
            var t = tensors[prefix + entry.Name];
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
            Assert.Equal(shape, t.shape);
            var want = RawFloats.Read(Path.Combine(d, entry.Name + ".f32"));
            var got = t.to(ScalarType.Float32).contiguous().flatten().data<float>().ToArray();
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(got[i] - want[i]) <= rtol * Math.Abs(want[i]) + (rtol > 0 ? 1e-6 : 0), $"{file} {entry.Name}[{i}]: {got[i]} vs {want[i]}");
            if (entry.Value.GetProperty("dtype").GetString() == "torch.int64") Assert.Equal(ScalarType.Int64, t.dtype);
            else Assert.Equal(ScalarType.Float32, t.dtype);
        }
        output.WriteLine($"{file}: {tensors.Count} tensors match");
    }

    [Fact]
    public void ConvertsThroughSafetensorsBackToAFilePyTorchLoads()
    {
        string d = Fixtures();
        using var cli = new CliHost();
        string st = Path.Combine(cli.Home.Path, "w.safetensors"), pth = Path.Combine(cli.Home.Path, "w.pth");
        var (code, stdout, stderr) = cli.Run("models", "convert", Path.Combine(d, "legacy_float32.pth"), st);
        Assert.True(code == 0, stderr);
        (code, stdout, stderr) = cli.Run("models", "convert", st, pth);
        Assert.True(code == 0, stderr);
        output.WriteLine(stdout);
        // PyTorch's own restricted loader reads what Reverie wrote, with the original values.
        var (pcode, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "load_pth.py"), pth);
        Assert.True(pcode == 0, text);
        var loaded = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(d, "manifest.json"))).RootElement;
        foreach (var entry in manifest.EnumerateObject())
        {
            var want = RawFloats.Read(Path.Combine(d, entry.Name + ".f32"));
            var got = loaded.GetProperty(entry.Name).GetProperty("values").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            Assert.Equal(want, got);
            Assert.Equal(entry.Value.GetProperty("dtype").GetString(), loaded.GetProperty(entry.Name).GetProperty("dtype").GetString());
        }
        (code, _, stderr) = cli.Run("models", "convert", pth, Path.Combine(cli.Home.Path, "w.onnx"));
        Assert.Equal(2, code);
        Assert.Contains(".safetensors or .pth", stderr);
    }

    [Fact]
    public void RefusesAPickleThatWouldRunCode()
    {
        string d = Fixtures();
        // The bare pickle, and the same pickle as a torch archive's data.pkl.
        var ex = Assert.Throws<BadInputException>(() => new SafeUnpickler(File.ReadAllBytes(Path.Combine(d, "evil.pkl")), TorchFile.AllowedGlobals).Load());
        output.WriteLine(ex.Message);
        Assert.Contains("system", ex.Message);
        string archive = Path.Combine(d, "evil.pth");
        using (var zip = ZipFile.Open(archive, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("archive/data.pkl").Open()) s.Write(File.ReadAllBytes(Path.Combine(d, "evil.pkl")));
            using (var s = zip.CreateEntry("archive/version").Open()) s.Write("3\n"u8);
        }
        ex = Assert.Throws<BadInputException>(() => TorchFile.Load(archive));
        Assert.Contains("'posix.system'", ex.Message);
        Assert.False(File.Exists(Path.Combine(d, "PWNED")));
    }

    [Fact]
    public void CorruptFilesAreOneSentence()
    {
        string d = Fixtures();
        string cut = Path.Combine(d, "cut.pth");
        var whole = File.ReadAllBytes(Path.Combine(d, "legacy_float32.pth"));
        File.WriteAllBytes(cut, whole[..(whole.Length / 2)]);
        var ex = Assert.Throws<BadInputException>(() => TorchFile.Load(cut));
        output.WriteLine(ex.Message);
        // A truncated zip archive.
        string cutZip = Path.Combine(d, "cut-zip.pth");
        var zipped = File.ReadAllBytes(Path.Combine(d, "zip_float32.pth"));
        File.WriteAllBytes(cutZip, zipped[..(zipped.Length * 2 / 3)]);
        ex = Assert.Throws<BadInputException>(() => TorchFile.Load(cutZip));
        output.WriteLine(ex.Message);
        Assert.DoesNotContain("\n", ex.Message);
        // A tensor whose shape needs more values than its storage holds.
        ex = Assert.Throws<BadInputException>(() => TorchFile.Load(Path.Combine(d, "short_storage.pth")));
        output.WriteLine(ex.Message);
        Assert.Contains("past the end of its storage", ex.Message);
        File.WriteAllText(Path.Combine(d, "text.pth"), "not weights");
        Assert.Throws<BadInputException>(() => TorchFile.Load(Path.Combine(d, "text.pth")));
        Assert.Throws<BadInputException>(() => TorchFile.Load(Path.Combine(d, "missing.pth")));
    }
}
