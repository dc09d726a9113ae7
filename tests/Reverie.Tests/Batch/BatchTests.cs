using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Batch;

/// <summary>
/// <c>reverie batch</c> on one machine, through the real CLI as separate processes: shards that
/// add up to the one-shard product byte for byte, concurrent shards that make each item once,
/// killed shards that leave nothing finished-looking, corrupted items made again, the Kubernetes
/// Job checked against the Kubernetes schema, and bad input in one sentence.
/// </summary>
public partial class BatchTests(ITestOutputHelper log) : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _dir = new();
    public void Dispose() { _cli.Dispose(); _dir.Dispose(); }

    /// <summary>Plans a microscope of the built-in fashion model's conv2 in <paramref name="folder"/>; returns the manifest.</summary>
    internal static string PlanMicroscope(CliHost cli, string folder, string channels, int steps, int size = 32)
    {
        Directory.CreateDirectory(folder);
        string m = Path.Combine(folder, "m.json");
        var (code, _, err) = cli.Run("batch", "plan", "microscope", "-m", "fashion", "--layers", "conv2", "--channels", channels,
            "--size", size.ToString(), "--steps", steps.ToString(), "--out", Path.Combine(folder, "out"), "-o", m);
        Assert.True(code == 0, err);
        return m;
    }

    /// <summary>The same manifest in another folder (its output folder is relative to it), as a second machine would see it.</summary>
    internal static string CopyManifest(string manifest, string folder)
    {
        Directory.CreateDirectory(Path.Combine(folder, "out"));
        string copy = Path.Combine(folder, Path.GetFileName(manifest));
        File.Copy(manifest, copy);
        return copy;
    }

    /// <summary>Every file below <paramref name="dir"/> but the lock files, by relative path, with its SHA-256.</summary>
    internal static SortedDictionary<string, string> Hashes(string dir) => new(
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".lock", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))), StringComparer.Ordinal);

    static int Made(string stdout) => int.Parse(MadeCount().Match(stdout).Groups[1].Value);

    [GeneratedRegex(@"items: (\d+) made")]
    private static partial Regex MadeCount();

    void AssertOneSentence((int Code, string Out, string Err) r, string expected)
    {
        log.WriteLine(r.Err.Trim());
        Assert.Equal(2, r.Code);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.Contains(expected, r.Err);
        Assert.DoesNotContain("Exception", r.Err);
    }

    [Fact]
    public void ThreeShardsMergeToTheSameBytesAsOneShard()
    {
        string a = PlanMicroscope(_cli, _dir.File("a"), "0..11", 16);
        string b = CopyManifest(a, _dir.File("b"));
        foreach (var shard in new[] { "0/3", "2/3", "1/3" })
        {
            var r = _cli.Run("batch", "run", a, "--shard", shard);
            Assert.True(r.Code == 0, r.Err);
            Assert.Equal(4, Made(r.Out));
        }
        Assert.Equal(0, _cli.Run("batch", "merge", a).Code);
        var one = _cli.Run("batch", "run", b, "--shard", "0/1");
        Assert.True(one.Code == 0, one.Err);
        Assert.Equal(12, Made(one.Out));
        Assert.Equal(0, _cli.Run("batch", "merge", b).Code);

        var ha = Hashes(Path.Combine(_dir.File("a"), "out"));
        var hb = Hashes(Path.Combine(_dir.File("b"), "out"));
        Assert.Equal(12 * 3 + 12 + 2, ha.Count); // per item: png, recipe, done; the product: 12 tiles, sheet, index
        Assert.Equal(ha, hb);

        // The product: an index that names every channel with its objective value, and a contact sheet of 12 tiles.
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.File("a"), "out", "microscope", "index.json")))!;
        var channels = index["layers"]![0]!["channels"]!.AsArray();
        Assert.Equal(Enumerable.Range(0, 12), channels.Select(c => (int)c!["channel"]!));
        Assert.All(channels, c => Assert.True(double.IsFinite((double)c!["value"]!)));
        Assert.All(channels, c => Assert.Equal($"conv2:{(int)c!["channel"]!}", (string?)c!["objective"]));
        Assert.Equal("fashion", (string?)index["model"]);
        using var scope = NewDisposeScope();
        var sheet = ImageIO.Load(Path.Combine(_dir.File("a"), "out", "microscope", "conv2", "sheet.png"));
        Assert.True(sheet.shape[3] > 4 * 32 && sheet.shape[2] > 3 * 32, $"sheet {sheet.shape[2]}x{sheet.shape[3]}");
    }

    [Fact]
    public async Task TheSameShardTwiceAtOnceMakesEveryItemOnceAndACorruptItemIsMadeAgain()
    {
        string m = PlanMicroscope(_cli, _dir.File("a"), "0..7", 200);
        var runs = await Task.WhenAll(Task.Run(() => _cli.Run("batch", "run", m, "--shard", "0/1")), Task.Run(() => _cli.Run("batch", "run", m, "--shard", "0/1")));
        foreach (var r in runs) { log.WriteLine(r.Out.Trim()); Assert.True(r.Code == 0, r.Err); }
        Assert.Equal(8, runs.Sum(r => Made(r.Out)));
        var again = _cli.Run("batch", "run", m, "--shard", "0/1");
        Assert.Equal(0, Made(again.Out));
        Assert.Contains("8 already done", again.Out);
        Assert.Equal(0, _cli.Run("batch", "status", m).Code);

        // Corrupt one item's image: status sees it, merge refuses, the next run makes it again, to the same bytes.
        string items = Path.Combine(_dir.File("a"), "out", "items");
        string victim = Directory.EnumerateFiles(items, "*.png").Order().First();
        byte[] good = File.ReadAllBytes(victim);
        var bad = (byte[])good.Clone();
        bad[^20] ^= 0xFF;
        File.WriteAllBytes(victim, bad);
        var status = _cli.Run("batch", "status", m, "--json");
        Assert.Equal(1, status.Code);
        Assert.Equal(1, (int)JsonNode.Parse(status.Out)!["corrupt"]!);
        AssertOneSentence(_cli.Run("batch", "merge", m), "1 corrupt");
        var redo = _cli.Run("batch", "run", m, "--shard", "0/1");
        Assert.Equal(1, Made(redo.Out));
        Assert.Equal(good, File.ReadAllBytes(victim));
        Assert.Equal(0, _cli.Run("batch", "merge", m).Code);
    }

    [Fact]
    public void AShardKilledMidItemLeavesNothingThatLooksFinished()
    {
        string m = PlanMicroscope(_cli, _dir.File("a"), "0..3", 20000, size: 64);
        string items = Path.Combine(_dir.File("a"), "out", "items");
        foreach (var signal in new[] { 9, 15 })
        {
            // The signal comes 3 s into the first item (an item takes minutes at 20000 steps).
            Stopwatch? started = null;
            var r = _cli.RunAndSignal(signal, err => err.Contains("item 1/4") && (started ??= Stopwatch.StartNew()).Elapsed.TotalSeconds > 3, TimeSpan.FromMinutes(2), "batch", "run", m, "--shard", "0/1");
            log.WriteLine($"signal {signal}: exit {r.Code}; files: {string.Join(", ", Directory.EnumerateFiles(items).Select(Path.GetFileName))}");
            Assert.Equal(signal == 9 ? 137 : 143, r.Code);
            // Only lock files: no image, recipe, hashes or temporary file of the item in progress.
            Assert.All(Directory.EnumerateFiles(items), f => Assert.EndsWith(".lock", f));
            var status = _cli.Run("batch", "status", m, "--json");
            Assert.Equal(4, (int)JsonNode.Parse(status.Out)!["missing"]!);
            AssertOneSentence(_cli.Run("batch", "merge", m), "4 of 4 items are not done");
        }
    }

    /// <summary>A microscope merged with --to-cache at the studio's settings shows in the studio's microscope with nothing left to render, tile for tile the batch's.</summary>
    [Fact]
    public async Task AMergedMicroscopeIsServedByTheStudio()
    {
        string folder = _dir.File("a");
        Directory.CreateDirectory(folder);
        string m = Path.Combine(folder, "m.json");
        var plan = _cli.Run("batch", "plan", "microscope", "-m", "fashion", "--layers", "conv3", "--channels", "0..5", "--steps", "8", "--out", Path.Combine(folder, "out"), "-o", m);
        Assert.True(plan.Code == 0, plan.Err);
        Assert.Equal(0, _cli.Run("batch", "run", m, "--shard", "0/1").Code);
        var merge = _cli.Run("batch", "merge", m, "--to-cache");
        Assert.True(merge.Code == 0, merge.Err);
        Assert.Contains("6 tiles put into the channel cache", merge.Out);

        await using var studio = await Reverie.Tests.Studio.StudioHost.StartAsync(_cli);
        var tiles = JsonNode.Parse(await studio.Http.GetStringAsync("/api/microscope/tiles?model=fashion&layer=conv3&steps=8"))!;
        Assert.Equal([0, 1, 2, 3, 4, 5], tiles["cached"]!.AsArray().Select(x => (int)x!));
        byte[] served = await studio.Http.GetByteArrayAsync("/api/microscope/tile?model=fashion&layer=conv3&channel=4&steps=8");
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "out", "microscope", "conv3", "4.png")), served);
    }

    [Fact]
    public void TheKubernetesJobIsAValidIndexedJobThatRunsTheShardCommand()
    {
        string m = PlanMicroscope(_cli, _dir.File("a"), "0..7", 4);
        var k = _cli.Run("batch", "k8s", m, "--completions", "4", "--parallelism", "2", "--image", "registry.example/reverie:0.3", "--volume", "reverie-shared");
        Assert.True(k.Code == 0, k.Err);
        string yaml = Path.ChangeExtension(m, ".k8s.yaml");
        var v = _cli.Run("node", [Path.Combine(Paths.RepoRoot, "tests", "scripts", "k8s", "validate.mjs"), yaml]);
        Assert.True(v.Code == 0, v.Err);
        var job = JsonNode.Parse(v.Out)!;
        var spec = job["spec"]!;
        Assert.Equal("Indexed", (string?)spec["completionMode"]);
        Assert.Equal(4, (int)spec["completions"]!);
        Assert.Equal(2, (int)spec["parallelism"]!);
        Assert.Equal(3, (int)spec["backoffLimitPerIndex"]!);
        Assert.Equal("Never", (string?)spec["template"]!["spec"]!["restartPolicy"]); // backoffLimitPerIndex needs it
        var container = spec["template"]!["spec"]!["containers"]![0]!;
        var command = container["command"]!.AsArray().Select(x => (string)x!).ToArray();
        Assert.Equal(["reverie", "batch", "run", m, "--shard-count", "4"], command);
        Assert.Equal(Path.GetDirectoryName(m), (string?)container["volumeMounts"]![0]!["mountPath"]);

        // The same command as the Slurm array's (after the program that runs Reverie).
        Assert.Equal(0, _cli.Run("batch", "slurm", m, "--tasks", "4").Code);
        string exec = File.ReadAllLines(Path.ChangeExtension(m, ".sbatch")).Single(l => l.StartsWith("exec ", StringComparison.Ordinal));
        Assert.EndsWith(" " + string.Join(' ', command.Skip(1)), exec);

        // The validator can fail: a Job whose completions is not a number is refused.
        File.WriteAllText(_dir.File("bad.yaml"), File.ReadAllText(yaml).Replace("completions: 4", "completions: four"));
        Assert.Equal(1, _cli.Run("node", [Path.Combine(Paths.RepoRoot, "tests", "scripts", "k8s", "validate.mjs"), _dir.File("bad.yaml")]).Code);
    }

    [Fact]
    public void ABatchOfDreamsGivesWhatTheDreamCommandGivesForEachPhoto()
    {
        string photos = _dir.File("photos");
        Directory.CreateDirectory(photos);
        using (var scope = NewDisposeScope())
        {
            Paths.SmallPhoto(Path.Combine(photos, "cup.png"), 48, 64);
            ImageIO.Save(ImageIO.Resize(ImageIO.Load(Path.Combine(Paths.RepoRoot, "examples", "coffee.png")), 64, 48), Path.Combine(photos, "tall.png"));
        }
        string single = _dir.File("single.png");
        // One thread, as batch items run (--threads-per-item 1): the same arithmetic, so the same bytes.
        var d = _cli.Run("--threads", "1", "dream", Path.Combine(photos, "cup.png"), "-m", "textures", "--octaves", "1", "--steps", "3", "-o", single);
        Assert.True(d.Code == 0, d.Err);
        string m = _dir.File("dreams.json");
        var p = _cli.Run("batch", "plan", "dream", "--photos", photos, "--recipe", single, "--out", _dir.File("dreams"), "-o", m);
        Assert.True(p.Code == 0, p.Err);
        Assert.Equal(0, _cli.Run("batch", "run", m, "--shard", "0/1").Code);
        var merge = _cli.Run("batch", "merge", m);
        Assert.True(merge.Code == 0, merge.Err);
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.File("dreams"), "dream", "index.json")))!;
        Assert.Equal(["cup.png", "tall.png"], index["dreams"]!.AsArray().Select(x => (string)x!["file"]!));
        using var s2 = NewDisposeScope();
        var fromBatch = ImageIO.Load(Path.Combine(_dir.File("dreams"), "dream", "cup.png"));
        var fromCommand = ImageIO.Load(single);
        Assert.Equal(fromCommand.shape, fromBatch.shape);
        Assert.Equal(0.0, fromBatch.sub(fromCommand).abs().max().item<float>());
        Assert.Equal([1, 3, 64, 48], ImageIO.Load(Path.Combine(_dir.File("dreams"), "dream", "tall.png")).shape);
        Assert.True(File.Exists(Path.Combine(_dir.File("dreams"), "dream", "sheet.png")));
    }

    [Fact]
    public void ABatchStyleGridMergesToTheGridOfTheStyleGridCommand()
    {
        string[] grid = [Paths.Sample("coffee.png"), Paths.Sample("hubble_deep_field.jpg"), "-m", "textures", "--layers", "conv2,conv3", "--ratios", "1e-3,1e-1",
            "--size", "48", "--steps", "10", "--style-layers", "conv1,conv2"];
        string single = _dir.File("grid.png");
        var g = _cli.Run(["--threads", "1", "style", "grid", .. grid, "-o", single]);
        Assert.True(g.Code == 0, g.Err);
        string m = _dir.File("grid.json");
        var p = _cli.Run(["batch", "plan", "style-grid", .. grid, "--out", _dir.File("cells"), "-o", m]);
        Assert.True(p.Code == 0, p.Err);
        foreach (var shard in new[] { "0/2", "1/2" }) Assert.Equal(0, _cli.Run("batch", "run", m, "--shard", shard).Code);
        var merge = _cli.Run("batch", "merge", m);
        Assert.True(merge.Code == 0, merge.Err);
        using var scope = NewDisposeScope();
        var fromBatch = ImageIO.Load(Path.Combine(_dir.File("cells"), "style-grid", "grid.png"));
        var fromCommand = ImageIO.Load(single);
        Assert.Equal(fromCommand.shape, fromBatch.shape);
        Assert.Equal(0.0, fromBatch.sub(fromCommand).abs().max().item<float>());
        var cells = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.File("cells"), "style-grid", "index.json")))!["cells"]!.AsArray();
        Assert.Equal(["conv2 0.001", "conv2 0.1", "conv3 0.001", "conv3 0.1"], cells.Select(c => (string)c!["label"]!));
        Assert.All(cells, c => Assert.True(double.IsFinite((double)c!["results"]!["style"]!)));
    }

    [Fact]
    public void AVideoStylizedFrameParallelIsTheSameFileAsTheStylizeCommandsVideo()
    {
        // Six frames of a window panning over coffee.png, with a second of sound, losslessly; a seeded, untrained style network.
        string video = _dir.File("pan.mkv");
        var f = Tool.Run("ffmpeg", "-v", "error", "-loop", "1", "-framerate", "8", "-i", Paths.Sample("coffee.png"), "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
            "-vf", "crop=128:96:200+3*n:200+2*n", "-frames:v", "6", "-map", "0:v", "-map", "1:a", "-c:v", "ffv1", "-c:a", "pcm_s16le", video);
        Assert.True(f.Code == 0, f.Err);
        string net = _dir.File("net.onnx");
        random.manual_seed(4);
        using (var transformer = new Reverie.Style.TransformerNet()) File.WriteAllBytes(net, transformer.ToOnnx());

        string single = _dir.File("single.mp4");
        var s = _cli.Run("--threads", "1", "stylize", video, "--net", net, "-o", single);
        Assert.True(s.Code == 0, s.Err);
        string m = _dir.File("video.json");
        var p = _cli.Run("batch", "plan", "video", video, "--net", net, "--out", _dir.File("frames"), "-o", m);
        Assert.True(p.Code == 0, p.Err);
        Assert.Contains("6 video items", p.Out);
        foreach (var shard in new[] { "0/2", "1/2" }) Assert.Equal(0, _cli.Run("batch", "run", m, "--shard", shard).Code);
        var merge = _cli.Run("batch", "merge", m);
        Assert.True(merge.Code == 0, merge.Err);
        string merged = Path.Combine(_dir.File("frames"), "video", "video.mp4");
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.File("frames"), "video", "index.json")))!;
        log.WriteLine(index.ToJsonString());
        Assert.Equal(6, (int)index["frames"]!);
        Assert.Equal("sparse-to-dense", (string)index["flow"]!["flow"]!);
        // The frames made apart, tied together along the flow at the merge: the very file the command makes in one go.
        Assert.True(File.ReadAllBytes(single).AsSpan().SequenceEqual(File.ReadAllBytes(merged)), "the merged video differs from the stylize command's");

        // What cannot be split: a dream that starts each frame from the previous one; and one way at a time.
        string dreamed = _dir.File("d.mp4");
        Assert.Equal(0, _cli.Run("dream", video, "-m", "textures", "--octaves", "1", "--steps", "1", "--dream-from-previous", "--flow", "none", "-o", dreamed).Code);
        AssertOneSentence(_cli.Run("batch", "plan", "video", video, "--recipe", dreamed, "--out", _dir.File("x"), "-o", _dir.File("x.json")), "previous one");
        AssertOneSentence(_cli.Run("batch", "plan", "video", video, "--recipe", dreamed, "--net", net, "--out", _dir.File("x"), "-o", _dir.File("x.json")), "one of them");
        Assert.False(Directory.Exists(_dir.File("x")));
    }

    [Fact]
    public void BadInputIsOneSentenceWithExitTwo()
    {
        string m = PlanMicroscope(_cli, _dir.File("a"), "0..3", 4);
        AssertOneSentence(_cli.Run("batch", "run", m, "--shard", "4/4"), "out of range");
        AssertOneSentence(_cli.Run("batch", "run", m, "--shard", "a/b"), "--shard takes I/N");
        AssertOneSentence(_cli.Run("batch", "run", m, "--shard", "0/9"), "at most 4");
        AssertOneSentence(_cli.Run("batch", "run", m), "SLURM_ARRAY_TASK_ID");
        AssertOneSentence(_cli.Run("batch", "merge", m), "4 of 4 items are not done");
        AssertOneSentence(_cli.Run("batch", "slurm", m, "--tasks", "0"), "--tasks");
        AssertOneSentence(_cli.Run("batch", "k8s", m, "--completions", "2", "--image", "x", "--volume", "Bad_Claim"), "PersistentVolumeClaim");
        AssertOneSentence(_cli.Run("batch", "plan", "microscope", "-m", "fashion", "--layers", "nosuch", "--out", _dir.File("x"), "-o", _dir.File("x.json")), "nosuch");
        AssertOneSentence(_cli.Run("batch", "run", _dir.File("none.json"), "--shard", "0/1"), "There is no batch manifest");

        string text = File.ReadAllText(m);
        File.WriteAllText(_dir.File("v99.json"), text.Replace("\"version\": 1,", "\"version\": 99,"));
        AssertOneSentence(_cli.Run("batch", "run", _dir.File("v99.json"), "--shard", "0/1"), "format version 99");
        File.WriteAllText(Path.Combine(_dir.File("a"), "edited.json"), text.Replace("conv2:3", "conv2:2"));
        AssertOneSentence(_cli.Run("batch", "run", Path.Combine(_dir.File("a"), "edited.json"), "--shard", "0/1"), "changed by hand");
        File.WriteAllText(_dir.File("notjson.json"), "{ nope");
        AssertOneSentence(_cli.Run("batch", "status", _dir.File("notjson.json")), "not");

        // The shared folder missing on this machine.
        string c = PlanMicroscope(_cli, _dir.File("c"), "0..1", 4);
        Directory.Delete(Path.Combine(_dir.File("c"), "out"), true);
        AssertOneSentence(_cli.Run("batch", "run", c, "--shard", "0/1"), "does not exist here");

        // A manifest path that holds a file Reverie did not write is not replaced.
        File.WriteAllText(_dir.File("notes.json"), "{\"mine\": true}");
        AssertOneSentence(_cli.Run("batch", "plan", "microscope", "-m", "fashion", "--layers", "conv2", "--out", _dir.File("y"), "-o", _dir.File("notes.json")), "not a batch manifest");
        Assert.Equal("{\"mine\": true}", File.ReadAllText(_dir.File("notes.json")));
    }
}
