using Reverie.Imaging;
using Reverie.Recipes;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Cli;

/// <summary>`reverie dream` and `reverie replay` end to end.</summary>
public class DreamCliTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    static void AssertBadInput((int Code, string Out, string Err) r, string mustContain)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(mustContain, lines[0]);
        Assert.DoesNotContain("   at ", r.Err);
    }

    [Fact]
    public void BadInputsGetOneSentence()
    {
        using var tmp = Paths.Temp();
        string photo = Paths.Sample("chelsea.png");
        var r = cli.Host.Run("dream", photo, "--layer", "inception_4x/output", "-o", tmp.File("a.png"));
        AssertBadInput(r, "no layer 'inception_4x/output'");
        Assert.Contains("inception_4a/output", r.Err);
        AssertBadInput(cli.Host.Run("dream", photo, "--layer", "l2(inception_4c/output:600)", "-o", tmp.File("a.png")), "channels 0-511");
        // The pre-0.2 form of --layer (then the L2 of channels) is refused with its new spelling.
        AssertBadInput(cli.Host.Run("dream", photo, "--layer", "inception_4c/output:0-15*2", "-o", tmp.File("a.png")), "--layer 'l2(inception_4c/output:0-15)*2'");
        AssertBadInput(cli.Host.Run("dream", photo, "--octaves", "0", "-o", tmp.File("a.png")), "--octaves");
        AssertBadInput(cli.Host.Run("dream", photo, "--steps", "-3", "-o", tmp.File("a.png")), "--steps");
        AssertBadInput(cli.Host.Run("dream", photo, "--layer", "l2(conv2/3x3:a-b)", "-o", tmp.File("a.png")), "channels must be numbers");
        // A 3000x3000 picture is too large to dream without tiles.
        string big = tmp.File("big.png");
        using (var img = TorchSharp.torch.rand(1, 3, 3000, 3000)) ImageIO.Save(img, big);
        AssertBadInput(cli.Host.Run("dream", big, "--tile", "0", "-o", tmp.File("b.png")), "too large to dream without tiles");
        Assert.Equal(new[] { "big.png" }, Directory.GetFiles(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void DreamWritesTheRecipeAndReplayReproducesItBitForBit()
    {
        using var tmp = Paths.Temp();
        string input = tmp.File("cat.png");
        File.Copy(Paths.Sample("chelsea.png"), input);
        string outPath = tmp.File("dream.png");
        var r = cli.Host.Run("dream", input, "--layer", "l2(inception_3b/output:0-31)*2", "--layer", "conv2/3x3", "--octaves", "2", "--steps", "3",
            "--seed", "7", "--smooth", "1", "--keep-colors", "--snapshots", tmp.File("snaps"), "-o", outPath);
        Assert.True(r.Code == 0, r.Err);
        var recipe = Recipe.Load(outPath);
        Assert.Equal("dream", recipe.Command);
        Assert.Equal(7, (int)recipe.Options!["seed"]!);
        Assert.Equal(2, (int)recipe.Options["dream"]!["octaves"]!);
        Assert.True(File.Exists(tmp.File("dream.recipe.json")));
        Assert.True(File.Exists(Path.Combine(tmp.File("snaps"), "octave1.png")));
        var replay = cli.Host.Run("replay", outPath, "-o", tmp.File("again.png"));
        Assert.True(replay.Code == 0, replay.Err);
        using var a = ImageIO.Load(outPath);
        using var b = ImageIO.Load(tmp.File("again.png"));
        Assert.Equal(0f, (a - b).abs().max().item<float>());
        // A changed input is refused.
        File.WriteAllBytes(input, File.ReadAllBytes(Paths.Sample("coffee.png")));
        var changed = cli.Host.Run("replay", outPath);
        Assert.Equal(2, changed.Code);
        Assert.Contains("has changed", changed.Err);
    }

    [Fact]
    public void RecipesOfTheLastVersionReplayOrAreRefusedNamingTheChange()
    {
        using var tmp = Paths.Temp();
        string input = tmp.File("cat.png");
        using (var photo = ImageIO.Load(Paths.Sample("chelsea.png")))
        using (var small = ImageIO.Resize(photo, 120, 180)) ImageIO.Save(small, input);
        string sha = Reverie.Models.Registry.Downloader.Sha256Of(input);
        // Version 0.1 recipes held the command's arguments and hand-built parameters, no options record.
        string Old(params string[] args) => System.Text.Json.JsonSerializer.Serialize(new
        {
            version = "0.1.0", command = "dream", arguments = args, parameters = new { model = "googlenet" },
            inputs = new Dictionary<string, string> { [input] = sha }, created = DateTime.UtcNow,
        });
        File.WriteAllText(tmp.File("old.json"), Old("dream", input, "--layer", "inception_3b/output", "--octaves", "1", "--steps", "2", "--snapshots", tmp.File("nowhere")));
        var ok = cli.Host.Run("replay", tmp.File("old.json"), "-o", tmp.File("again.png"));
        Assert.True(ok.Code == 0, ok.Err);
        Assert.NotNull(Recipe.Load(tmp.File("again.png")).Options);
        Assert.False(Directory.Exists(tmp.File("nowhere")), "replay used an output path from the recipe");
        File.WriteAllText(tmp.File("changed.json"), Old("dream", input, "--layer", "inception_3b/output:0-7", "--octaves", "1", "--steps", "2"));
        AssertBadInput(cli.Host.Run("replay", tmp.File("changed.json"), "-o", tmp.File("x.png")), "l2(inception_3b/output:0-7)");
        File.WriteAllText(tmp.File("nested.json"), System.Text.Json.JsonSerializer.Serialize(new { command = "replay", arguments = new[] { tmp.File("nested.json") } }));
        AssertBadInput(cli.Host.Run("replay", tmp.File("nested.json")), "replays another recipe");
        Assert.False(File.Exists(tmp.File("x.png")));
    }

    [Fact]
    public void ZoomWritesAnAnimatedGif()
    {
        using var tmp = Paths.Temp();
        string outPath = tmp.File("zoom.gif");
        var r = cli.Host.Run("dream", Paths.Sample("chelsea.png"), "--max-size", "160", "--octaves", "2", "--steps", "2", "--zoom", "3", "--zoom-rotate", "2", "-o", outPath);
        Assert.True(r.Code == 0, r.Err);
        var bytes = File.ReadAllBytes(outPath);
        Assert.Equal("GIF89a", System.Text.Encoding.ASCII.GetString(bytes, 0, 6));
        using var codec = SkiaSharp.SKCodec.Create(new MemoryStream(bytes));
        Assert.Equal(3, codec.FrameCount);
        using var first = ImageIO.Decode(bytes, "zoom.gif");
        Assert.Equal(160, first.shape[3]);
    }
}

/// <summary>Large images: tiles keep peak memory bounded by the tile, not the image.</summary>
public class DreamMemoryTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    [Fact]
    [Trait("Category", "Slow")]
    public void A4096PixelDreamStaysUnder3GB()
    {
        using var tmp = Paths.Temp();
        string big = tmp.File("big.jpg");
        using (var photo = ImageIO.Load(Paths.Sample("astronaut.png")))
        using (var up = ImageIO.Resize(photo, 4096, 4096))
            ImageIO.Save(up, big);
        var r = cli.Host.Run("/usr/bin/time", ["-v", "dotnet", Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"),
            "dream", big, "--octaves", "1", "--steps", "2", "--tile", "512", "-o", tmp.File("out.jpg")], TimeSpan.FromMinutes(12)); // 64 tiles a step: minutes on two busy cores
        Assert.True(r.Code == 0, r.Err);
        var line = r.Err.Split('\n').First(l => l.Contains("Maximum resident set size"));
        long kb = long.Parse(line.Split(':')[1].Trim());
        Console.WriteLine($"4096x4096 dream, 1 octave x 2 steps, tile 512: peak RSS {kb / 1024} MB");
        Assert.True(kb <= 3L * 1024 * 1024, $"peak RSS {kb / 1024} MB");
        using var result = ImageIO.Load(tmp.File("out.jpg"));
        Assert.Equal(4096, result.shape[3]);
    }
}

/// <summary>Ctrl+C and a model that cannot be had.</summary>
public class DreamInterruptTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    [Fact]
    public async Task CtrlCSavesTheImageAsFarAsItGot()
    {
        using var tmp = Paths.Temp();
        string outPath = tmp.File("interrupted.png");
        var psi = new System.Diagnostics.ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[.. CliHost.DefaultSignals, "dotnet", Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), "dream", Paths.Sample("chelsea.png"), "--steps", "200", "-o", outPath])
            psi.ArgumentList.Add(a);
        psi.Environment["REVERIE_CACHE"] = cli.Host.Cache;
        psi.Environment["REVERIE_REGISTRY"] = cli.Host.Registry;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = new System.Text.StringBuilder();
        var seenProgress = new ManualResetEventSlim();
        p.ErrorDataReceived += (_, e) => { if (e.Data is null) return; lock (stderr) stderr.AppendLine(e.Data); if (e.Data.Contains("octave 1/4")) seenProgress.Set(); };
        p.BeginErrorReadLine();
        var stdout = p.StandardOutput.ReadToEndAsync();
        Assert.True(seenProgress.Wait(TimeSpan.FromMinutes(2)), "no progress reported: " + stderr);
        System.Diagnostics.Process.Start("kill", ["-INT", p.Id.ToString()])!.WaitForExit();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(1)), "did not stop after Ctrl+C");
        Assert.Equal(130, p.ExitCode);
        Assert.Contains("interrupted", await stdout);
        using var img = ImageIO.Load(outPath);
        Assert.Equal(451, img.shape[3]);
        Assert.NotNull(Recipe.Load(outPath));
    }

    [Fact]
    public void AModelThatCannotBeDownloadedIsOneLine()
    {
        using var host = new CliHost();
        File.WriteAllText(host.Registry, """{"models":[{"name":"googlenet","file":"googlenet-7.onnx","url":"http://127.0.0.1:9/googlenet-7.onnx","sha256":"00","size":10}]}""");
        // Asked for by name, googlenet must come or fail in one line (without --model, dream falls
        // back to the built-in textures model instead: TrainCliTests.TheMainJobWorksOfflineWithTheEmbeddedModel).
        var r = host.Run("dream", Paths.Sample("chelsea.png"), "-m", "googlenet", "-o", Path.Combine(host.Home.Path, "x.png"));
        Assert.Equal(1, r.Code);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:")).ToList();
        Assert.Single(lines);
        Assert.Contains("'googlenet' is not cached and could not be downloaded", lines[0]);
        Assert.Contains("reverie models add googlenet FILE", lines[0]);
    }
}

/// <summary>Every command's recipe replays, not only dream's.</summary>
public class ReplayOtherCommandsTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    [Fact]
    public void VisualizeOutputsReplayBitForBit()
    {
        using var tmp = Paths.Temp();
        string outPath = tmp.File("vis.png");
        var r = cli.Host.Run("visualize", "--objective", "inception_4a/output:11", "--size", "64", "--steps", "4", "--seed", "3", "-o", outPath);
        Assert.True(r.Code == 0, r.Err);
        Assert.DoesNotContain(outPath, Recipe.Load(outPath).Arguments);
        var replay = cli.Host.Run("replay", outPath, "-o", tmp.File("again.png"));
        Assert.True(replay.Code == 0, replay.Err);
        using var a = ImageIO.Load(outPath);
        using var b = ImageIO.Load(tmp.File("again.png"));
        Assert.Equal(0f, (a - b).abs().max().item<float>());
    }
}
