using System.Security.Cryptography;
using Reverie.Imaging;
using Reverie.Recipes;
using Reverie.Tests.Infrastructure;
using Reverie.Tests.Registry;
using static TorchSharp.torch;

namespace Reverie.Tests.Cli;

/// <summary>
/// The probe's defects (issue 16), one named regression test each, on the real CLI in a child
/// process with its own cache and registry, with the embedded textures model (no download).
/// </summary>
public class HostileInputTests : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _tmp = new();
    readonly string _photo;

    public HostileInputTests()
    {
        _photo = _tmp.File("photo.png");
        using var scope = NewDisposeScope();
        ImageIO.Save(ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 60, 90), _photo);
    }

    public void Dispose() { _cli.Dispose(); _tmp.Dispose(); }

    static string Sha(string f) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));

    /// <summary>Exit 2, one line on stderr starting "error:", naming <paramref name="mustContain"/>, no .NET type name.</summary>
    internal static void AssertRefused((int Code, string Out, string Err) r, string mustContain)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.Contains("NNPACK")).ToList();
        Assert.True(lines.Count == 1, $"stderr has {lines.Count} lines: {r.Err}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mustContain, lines[0]);
        Assert.DoesNotMatch(@"System\.|Exception\b|   at ", r.Err);
    }

    string[] Dream(params string[] more) => ["dream", _photo, "-m", "textures", "--octaves", "1", "--steps", "1", .. more];

    [Fact]
    public void D01_APngWhoseRecipeReplaysItselfIsRefusedOnce()
    {
        string png = _tmp.File("loop.png");
        new Recipe { Command = "replay", Arguments = ["replay", png] }.SaveWithImage(zeros(1, 3, 8, 8), png);
        AssertRefused(_cli.Run("replay", png), "replays another recipe");
        // A dream recipe whose recorded arguments are a replay of itself: refused too, not recursed.
        new Recipe { Command = "dream", Arguments = ["replay", png] }.SaveWithImage(zeros(1, 3, 8, 8), png);
        AssertRefused(_cli.Run("replay", png), "replays another recipe");
    }

    [Fact]
    public void D02_RegistryEntriesCannotWriteOutsideTheCache()
    {
        File.WriteAllText(_cli.Registry, """{"models":[{"name":"evil","file":"../../escaped.onnx","url":"http://127.0.0.1:9/x.onnx"}]}""");
        AssertRefused(_cli.Run("models", "pull", "evil"), "plain file name");
        File.WriteAllText(_cli.Registry, """{"models":[{"name":"../evil","url":"http://127.0.0.1:9/x.onnx"}]}""");
        AssertRefused(_cli.Run("models", "list"), "the name must be");
        File.WriteAllText(_cli.Registry, """{"models":[{"name":"evil","labels":"/etc/passwd","url":"http://127.0.0.1:9/x.onnx"}]}""");
        AssertRefused(_cli.Run("models", "list"), "'labels'");
        File.Delete(_cli.Registry);
        AssertRefused(_cli.Run("models", "add", "../x", Path.Combine(Paths.Models, "mnist.onnx")), "not a usable model name");
        Assert.False(File.Exists(Path.Combine(_cli.Home.Path, "escaped.onnx")));
        Assert.False(Directory.Exists(Path.Combine(_cli.Home.Path, "x")));
    }

    [Fact]
    public void D04_TheRecipeBesideAnOutputNeverReplacesACheckpoint()
    {
        string checkpoint = _tmp.File("m.json");
        File.WriteAllText(checkpoint, """{"arch":"small","weights":"m.safetensors"}""");
        string before = Sha(checkpoint);
        var r = _cli.Run(Dream("-o", _tmp.File("m.png")));
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(before, Sha(checkpoint));
        Assert.True(File.Exists(_tmp.File("m.recipe.json")));
        // A file in the sidecar's place that is not a recipe is refused before any work.
        File.WriteAllText(_tmp.File("n.recipe.json"), "my notes");
        AssertRefused(_cli.Run(Dream("-o", _tmp.File("n.png"))), "is not a Reverie recipe");
        Assert.Equal("my notes", File.ReadAllText(_tmp.File("n.recipe.json")));
    }

    [Fact]
    public void D05_AnOutputEqualToTheInputIsRefused()
    {
        string before = Sha(_photo);
        AssertRefused(_cli.Run(Dream("-o", _photo)), "is an input of this run");
        AssertRefused(_cli.Run("attack", _photo, "-m", "textures", "-o", _photo), "is an input of this run");
        AssertRefused(_cli.Run("invert", _photo, "-m", "textures", "--layer", "conv3", "--steps", "1", "-o", _photo), "is an input of this run");
        // Through a link to the input, and with --force: still never.
        string link = _tmp.File("link.png");
        File.CreateSymbolicLink(link, _photo);
        AssertRefused(_cli.Run(Dream("-o", link, "--force")), "is an input of this run");
        Assert.Equal(before, Sha(_photo));
        // A file Reverie did not write is replaced only with --force.
        string foreign = _tmp.File("foreign.png");
        File.Copy(_photo, foreign);
        AssertRefused(_cli.Run(Dream("-o", foreign)), "--force");
        Assert.Equal(before, Sha(foreign));
        Assert.Equal(0, _cli.Run(Dream("-o", foreign, "--force")).Code);
        Assert.NotEqual(before, Sha(foreign));
        // ... and a file Reverie wrote is replaced without it (re-running a command works).
        Assert.Equal(0, _cli.Run(Dream("-o", foreign)).Code);
    }

    [Fact]
    public void D08_NaNAndInfinityAreRefusedBeforeAnyWork()
    {
        AssertRefused(_cli.Run(Dream("--step-size", "NaN", "-o", _tmp.File("a.png"))), "--step-size");
        AssertRefused(_cli.Run(Dream("--octave-scale", "Infinity", "-o", _tmp.File("a.png"))), "--octave-scale");
        AssertRefused(_cli.Run(Dream("--layer", "conv3*NaN", "-o", _tmp.File("a.png"))), "NaN");
        AssertRefused(_cli.Run("visualize", "-m", "textures", "-O", "conv3", "--lr", "NaN", "-o", _tmp.File("a.png")), "--lr");
        Assert.False(File.Exists(_tmp.File("a.png")));
    }

    [Fact]
    public void D09_ImagesTooSmallForTheNetworkAreOneSentence()
    {
        string tiny = _tmp.File("tiny.png");
        ImageIO.Save(ones(1, 3, 1, 1), tiny);
        AssertRefused(_cli.Run("dream", tiny, "-m", "textures", "--steps", "1", "-o", _tmp.File("t.png")), "too small");
        string thin = _tmp.File("thin.png");
        ImageIO.Save(ones(1, 3, 1, 96), thin);
        AssertRefused(_cli.Run("dream", thin, "-m", "textures", "--steps", "1", "-o", _tmp.File("t.png")), "too small");
        AssertRefused(_cli.Run(Dream("--octaves", "1000", "-o", _tmp.File("t.png"))), "--octaves");
    }

    [Fact]
    public void D10_AttackWithEpsZeroLeavesThePhotoAndSucceedsAsANoOp()
    {
        var r = _cli.Run("attack", _photo, "-m", "textures", "--eps", "0", "-o", _tmp.File("a.png"));
        Assert.True(r.Code == 0, r.Err);
        var results = Recipe.Load(_tmp.File("a.png")).Results!;
        Assert.Equal(0.0, (double)results["linf"]!, 6);
    }

    [Fact]
    public void D11_GarbageValuesAreRefusedNotTurnedIntoBlackImages()
    {
        AssertRefused(_cli.Run(Dream("--objective", "1e400*conv3:5", "-o", _tmp.File("g.png"))), "finite");
        AssertRefused(_cli.Run("dream", _photo, "-m", "textures", "--zoom", "2", "--zoom-scale", "NaN", "-o", _tmp.File("g.gif")), "--zoom-scale");
        AssertRefused(_cli.Run("models", "add", "stdzero", Path.Combine(Paths.Models, "mnist.onnx"), "--std", "0"), "std");
        Assert.False(File.Exists(_tmp.File("g.png")));
        Assert.False(Directory.Exists(Path.Combine(_cli.Cache, "models", "stdzero")));
    }

    [Fact]
    public void D12_AbsurdThreadCountsAreRefused()
    {
        AssertRefused(_cli.Run("--threads", "100000", "train", "--data", "textures", "-o", _tmp.File("m")), "--threads");
        AssertRefused(_cli.Run("train", "--threads", "-2", "--data", "textures", "-o", _tmp.File("m")), "--threads");
        AssertRefused(_cli.Run(["--threads", "0", .. Dream("-o", _tmp.File("x.png"))]), "--threads");
        Assert.Equal(0, _cli.Run(["--threads", "1", .. Dream("-o", _tmp.File("x.png"))]).Code);
    }

    [Fact]
    public void D13_StyleWithBothLayerListsGivenRuns()
    {
        var r = _cli.Run("style", _photo, _photo, "-m", "textures", "--style-layers", "conv1,conv2", "--content-layers", "conv3", "--size", "48", "--steps", "1", "-o", _tmp.File("s.png"));
        Assert.True(r.Code == 0, r.Err);
    }

    // D14 (ONNX external data through a link) is ImporterTests.ExternalDataIsReadAndConfinedToTheModelFolder.

    [Fact]
    public void D15_NoDotNetNamesForFoldersFilesAndParseErrors()
    {
        Directory.CreateDirectory(_tmp.File("adir"));
        AssertRefused(_cli.Run(Dream("-o", _tmp.File("adir"))), "folder");
        Directory.CreateDirectory(_tmp.File("b.recipe.json"));
        AssertRefused(_cli.Run(Dream("-o", _tmp.File("b.png"))), "folder");
        Assert.False(File.Exists(_tmp.File("b.png")));
        AssertRefused(_cli.Run(Dream("--snapshots", _photo, "-o", _tmp.File("c.png"))), "is a file");
        AssertRefused(_cli.Run("visualize", "-m", "textures", "-O", "direction:conv3@/etc/passwd", "-o", _tmp.File("v.png")), "direction");
        File.WriteAllText(_tmp.File("bad.json"), "{ not json");
        AssertRefused(_cli.Run("replay", _tmp.File("bad.json")), "readable Reverie recipe");
        AssertRefused(_cli.Run(Dream("--seed", "many", "-o", _tmp.File("d.png"))), "--seed takes a whole number; got 'many'");
    }

    [Fact]
    public void D15_ADownloadRedirectedToAFileIsOneSentence()
    {
        using var server = new LoopbackServer();
        File.WriteAllText(_cli.Registry, $$"""{"models":[{"name":"redir","file":"m.onnx","url":"{{server.Url}}/redirect-file/mnist.onnx"}]}""");
        var r = _cli.Run("models", "pull", "redir");
        Assert.True(r.Code is 1 or 2, r.Err);
        Assert.DoesNotMatch(@"System\.|Exception\b|root:", r.Err);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(Path.Combine(_cli.Cache, "models", "redir")));
    }

    [Fact]
    public void D16_ReplayIgnoresOutputPathsFromTheRecipe()
    {
        string out1 = _tmp.File("r.png");
        Assert.Equal(0, _cli.Run(Dream("-o", out1)).Code);
        var recipe = Recipe.Load(out1);
        string elsewhere = _tmp.File("recipe-chose-this");
        string crafted = _tmp.File("crafted.json");
        File.WriteAllText(crafted, (recipe with { Options = null, Arguments = [.. Dream("--snapshots", elsewhere, "-o", _tmp.File("recipe-out.png"))] }).ToJson());
        var r = _cli.Run("replay", crafted, "-o", _tmp.File("mine.png"));
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(_tmp.File("mine.png")));
        Assert.False(Directory.Exists(elsewhere));
        Assert.False(File.Exists(_tmp.File("recipe-out.png")));
    }

    [Fact]
    public void D17_FailuresLeaveNoHalfEntriesOrEmptyFolders()
    {
        AssertRefused(_cli.Run("models", "add", "lab", Path.Combine(Paths.Models, "mnist.onnx"), "--labels", _tmp.File("missing.txt")), "does not exist");
        Assert.False(File.Exists(_cli.Registry) && File.ReadAllText(_cli.Registry).Contains("\"lab\""), "a half registry entry was left");
        Assert.False(Directory.Exists(Path.Combine(_cli.Cache, "models", "lab")));
        using var server = new LoopbackServer();
        File.WriteAllText(_cli.Registry, $$"""{"models":[{"name":"gone","file":"mnist.onnx","url":"{{server.Url}}/missing/mnist.onnx"}]}""");
        Assert.NotEqual(0, _cli.Run("models", "pull", "gone").Code);
        Assert.False(Directory.Exists(Path.Combine(_cli.Cache, "models", "gone")));
    }

    [Fact]
    public void D18_OutOfRangeValuesAreRefusedWhereTheyAreGiven()
    {
        AssertRefused(_cli.Run("models", "add", "m12", Path.Combine(Paths.Models, "mnist.onnx"), "--mean", "1,2"), "mean");
        AssertRefused(_cli.Run("visualize", "-m", "textures", "-O", "conv3:0@5000,5000", "-o", _tmp.File("v.png")), "5000");
        AssertRefused(_cli.Run("visualize", "-m", "textures", "-O", "conv3:0@-3,2", "-o", _tmp.File("v.png")), "-3");
        AssertRefused(_cli.Run("atlas", "-m", "textures", "--layer", "conv3", "--channels", "250..300", "-o", _tmp.File("a.png")), "300");
        AssertRefused(_cli.Run("evaluate", "-m", "textures", "--data", "textures", "--limit", "0"), "--limit");
        AssertRefused(_cli.Run("evaluate", "-m", "textures", "--data", "textures", "--limit", "-3"), "--limit");
    }

    [Fact]
    public void D19_AFileCannotBeInstalledUnderAnEmbeddedModelsName()
    {
        AssertRefused(_cli.Run("models", "add", "fashion", Path.Combine(Paths.Models, "mnist.onnx")), "comes with Reverie (embedded)");
        AssertRefused(_cli.Run("models", "add", "resnet18", Path.Combine(Paths.Models, "mnist.onnx")), "comes with Reverie (packaged)");
        Assert.False(Directory.Exists(Path.Combine(_cli.Cache, "models", "fashion")));
        var info = _cli.Run("models", "info", "fashion");
        Assert.DoesNotContain("mnist.onnx", info.Out);
    }
}

/// <summary>Interrupts (issue 16, defects 6, 7 and 20) and the huge-PNG budget (defect 3): real signals to the real CLI.</summary>
public class InterruptTests : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _tmp = new();
    public void Dispose() { _cli.Dispose(); _tmp.Dispose(); }

    [Fact]
    public void D06_CtrlCRightAfterStartExits130CleanlyAndQuickly()
    {
        string output = _tmp.File("early.png");
        var r = _cli.RunAndSignal(2, _ => false, TimeSpan.FromMilliseconds(300), "dream", Paths.Sample("coffee.png"), "-m", "textures", "-o", output);
        Assert.True(r.Code is 130 or 0, $"exit {r.Code}: {r.Err}"); // 0 only if it finished within 0.3 s
        Assert.DoesNotMatch(@"Exception|System\.", r.Err);
        Assert.True(r.SecondsAfterSignal < 30, $"went on for {r.SecondsAfterSignal:0.0} s after the signal");
        if (r.Code == 130 && File.Exists(output)) Assert.True(Recipe.Load(output).Interrupted);
    }

    [Theory]
    [InlineData("dream")]
    [InlineData("visualize")]
    [InlineData("style")]
    [InlineData("attack")]
    public void D20_AnInterruptedRunSavesWhatItHasAndSaysSo(string command)
    {
        string output = _tmp.File($"{command}.png"), photo = Paths.Sample("coffee.png");
        string[] args = command switch
        {
            "dream" => ["dream", photo, "-m", "textures", "--steps", "200", "-o", output],
            "visualize" => ["visualize", "-m", "textures", "-O", "conv3", "--size", "64", "--steps", "5000", "-o", output],
            "style" => ["style", photo, photo, "-m", "textures", "--style-layers", "conv1,conv2", "--content-layers", "conv3", "--size", "64", "--steps", "5000", "-o", output],
            _ => ["attack", photo, "-m", "textures", "--method", "pgd", "--steps", "10000", "-o", output],
        };
        // Signal once a few steps are done.
        var r = _cli.RunAndSignal(2, err => System.Text.RegularExpressions.Regex.IsMatch(err, @"(step|iteration) ([3-9]|\d\d+)/"), TimeSpan.FromMinutes(2), args);
        Assert.True(r.Code == 130, $"exit {r.Code}: {r.Err}");
        var recipe = Recipe.Load(output);
        Assert.True(recipe.Interrupted);
        Assert.NotNull(recipe.Steps);
        Assert.InRange(recipe.Steps!.Value, 1, command == "dream" ? 799 : 4999);
    }

    [Theory]
    [InlineData(2, 130)]
    [InlineData(15, 143)]
    public void D07_AnInterruptedDownloadLeavesNoPartFile(int signal, int code)
    {
        using var server = new LoopbackServer();
        long size = new FileInfo(Path.Combine(Paths.Models, "mnist.onnx")).Length;
        File.WriteAllText(_cli.Registry, $$"""{"models":[{"name":"slow","file":"mnist.onnx","url":"{{server.Url}}/slow/mnist.onnx","size":{{size}}}]}""");
        // Signal once the download has begun (the folder with its .part file exists).
        string dir = Path.Combine(_cli.Cache, "models", "slow");
        var r = _cli.RunAndSignal(signal, _ => Directory.Exists(dir) && Directory.GetFiles(dir, "*.part").Length > 0, TimeSpan.FromSeconds(20), "models", "pull", "slow");
        Assert.True(r.Code == code, $"exit {r.Code}: {r.Err}");
        Assert.False(Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any(), "the interrupted download left files behind");
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void D03_AHugePngShrunkOnLoadStaysUnderAGigabyte()
    {
        // 15000x15000, one colour: under a megabyte of PNG, 225 megapixels.
        string huge = _tmp.File("huge.png");
        string script = _tmp.File("huge.py");
        File.WriteAllText(script, $$"""
            import zlib, struct
            w = h = 15000
            def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
            row = b'\x00' + bytes([120, 80, 40]) * w
            z = zlib.compressobj(6)
            data = b''.join(z.compress(row) for _ in range(h)) + z.flush()
            open(r'{{huge}}', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', data) + chunk(b'IEND', b''))
            """);
        var (code, output) = Python.Run(script);
        Assert.True(code == 0, output);
        var r = _cli.Run("/usr/bin/time", ["-v", "dotnet", Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), "dream", huge, "-m", "textures", "--max-size", "96", "--octaves", "1", "--steps", "1", "-o", _tmp.File("h.png")]);
        Assert.True(r.Code == 0, r.Err);
        long kb = long.Parse(System.Text.RegularExpressions.Regex.Match(r.Err, @"Maximum resident set size \(kbytes\): (\d+)").Groups[1].Value);
        Assert.True(kb < 1024 * 1024, $"peak RSS {kb / 1024} MB");
        using var scope = NewDisposeScope();
        Assert.Equal(new long[] { 1, 3, 96, 96 }, ImageIO.Load(_tmp.File("h.png")).shape);
    }
}
