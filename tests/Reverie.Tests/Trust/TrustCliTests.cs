using System.Security.Cryptography;
using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Trust;

/// <summary>
/// Issue 36's probe, one named regression test per defect, on the real CLI in a child process with
/// its own cache and registry and the embedded textures model (no download).
/// </summary>
public sealed class TrustCliTests : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _tmp = new();
    readonly string _photo;

    public TrustCliTests() => _photo = Paths.SmallPhoto(_tmp.File("in.png"));

    public void Dispose() { _cli.Dispose(); _tmp.Dispose(); }

    static string Sha(string f) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));

    string[] Dream(string output, params string[] more) => ["dream", _photo, "-m", "textures", "--layer", "conv6", "--octaves", "1", "--steps", "1", "-o", output, .. more];

    [Fact]
    public void P04_AUsersFileBesideAReverieRecipeIsNotReplacedWithoutForce()
    {
        // The probe: dream -o photo.png, then dream -o photo.jpg over the user's own photo.jpg.
        string png = _tmp.File("photo.png"), jpg = _tmp.File("photo.jpg");
        File.Copy(Paths.Sample("chelsea.png"), jpg); // the user's file (its bytes need not be a JPEG)
        string before = Sha(jpg);
        Assert.Equal(0, _cli.Run(Dream(png)).Code);
        Assert.True(File.Exists(_tmp.File("photo.recipe.json")));
        HostileRefusal(_cli.Run(Dream(jpg)), "was not written by Reverie");
        Assert.Equal(before, Sha(jpg));
        // Reverie's own JPEG, named with its hash by the sidecar, is replaced on a second run...
        string own = _tmp.File("own.jpg");
        Assert.Equal(0, _cli.Run(Dream(own)).Code);
        Assert.Equal(0, _cli.Run(Dream(own, "--seed", "2")).Code);
        // ...but not once the user has changed it: the sidecar's hash no longer proves it is Reverie's.
        File.AppendAllText(own, "edited");
        HostileRefusal(_cli.Run(Dream(own)), "was not written by Reverie");
        Assert.Equal(0, _cli.Run(Dream(own, "--force")).Code);
    }

    static void HostileRefusal((int Code, string Out, string Err) r, string mustContain) =>
        Reverie.Tests.Cli.HostileInputTests.AssertRefused(r, mustContain);

    [Fact]
    public void P03_DevicesAndPipesAreRefusedInOneSentenceByTheCommands()
    {
        string fifo = _tmp.File("pipe");
        using (var p = System.Diagnostics.Process.Start("mkfifo", [fifo])!) p.WaitForExit();
        foreach (var path in new[] { "/dev/zero", fifo })
        {
            HostileRefusal(_cli.Run(["visualize", "-m", "textures", "--objective", $"direction:conv6@{path}", "--steps", "1", "--size", "32", "-o", _tmp.File("v.png")]), "not a regular file");
            HostileRefusal(_cli.Run("replay", path), "not a regular file");
            HostileRefusal(_cli.Run("batch", "run", path, "--shard", "0/1"), "not a regular file");
        }
    }

    /// <summary>A PNG carrying an old-style recipe (arguments only) of <paramref name="command"/>.</summary>
    string OldRecipePng(string name, string command, params string[] arguments)
    {
        string png = _tmp.File(name);
        new Reverie.Recipes.Recipe { Command = command, Arguments = arguments }.SaveWithImage(zeros(1, 3, 8, 8), png);
        File.Delete(Reverie.Imaging.OutputFiles.SidecarOf(png));
        return png;
    }

    [Fact]
    public void P06_AReplayedRecipeIsDataNotACommand()
    {
        string manifest = _tmp.File("m.json");
        // Commands with side effects beyond their own output are not replayed.
        HostileRefusal(_cli.Run("replay", OldRecipePng("slurm.png", "batch", "batch", "slurm", manifest, "--submit")), "which replay does not run");
        HostileRefusal(_cli.Run("replay", OldRecipePng("plan.png", "batch plan", "batch", "plan", "microscope", "--out", "/tmp/x.json")), "which replay does not run");
        HostileRefusal(_cli.Run("replay", OldRecipePng("models.png", "models", "models", "remove", "googlenet")), "which replay does not run");
        Assert.False(File.Exists(_tmp.File("slurm.sbatch")));
        // A response file is not read.
        HostileRefusal(_cli.Run("replay", OldRecipePng("at.png", "dream", "dream", "@/etc/passwd")), "response file");
        // Output locations, in any spelling, and --force are dropped: the snapshots stay out of the folder the recipe names,
        // and the user's file at the replay's own output name is not replaced.
        string elsewhere = Directory.CreateDirectory(_tmp.File("elsewhere")).FullName;
        string png = OldRecipePng("snap.png", "dream", "dream", _photo, "-m", "textures", "--layer", "conv6", "--octaves", "1", "--steps", "2",
            $"--snapshots:{elsewhere}", "--force", $"--output={_tmp.File("chosen.png")}");
        string usersFile = _tmp.File("snap-replay.png");
        File.Copy(Paths.Sample("chelsea.png"), usersFile);
        HostileRefusal(_cli.Run("replay", png), "was not written by Reverie");
        Assert.Empty(Directory.EnumerateFileSystemEntries(elsewhere));
        Assert.False(File.Exists(_tmp.File("chosen.png")));
        File.Delete(usersFile);
        var r = _cli.Run("replay", png);
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(usersFile));
        Assert.Empty(Directory.EnumerateFileSystemEntries(elsewhere));
    }

    /// <summary>A one-photo dream batch, run; returns its manifest.</summary>
    string DreamBatch()
    {
        string photos = Directory.CreateDirectory(_tmp.File("photos")).FullName;
        File.Copy(_photo, Path.Combine(photos, "cup.png"));
        string single = _tmp.File("single.png");
        Assert.Equal(0, _cli.Run("dream", _photo, "-m", "textures", "--octaves", "1", "--steps", "1", "-o", single).Code);
        string m = _tmp.File("dreams.json");
        var p = _cli.Run("batch", "plan", "dream", "--photos", photos, "--recipe", single, "--out", _tmp.File("dreams"), "-o", m);
        Assert.True(p.Code == 0, p.Err);
        Assert.Equal(0, _cli.Run("batch", "run", m, "--shard", "0/1").Code);
        return m;
    }

    static void EditManifest(string m, Action<System.Text.Json.Nodes.JsonObject> edit)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(m))!.AsObject();
        edit(node);
        File.WriteAllText(m, node.ToJsonString());
    }

    [Fact]
    public void P07_P08_ManifestFieldsCannotBecomeCommandsOrLeaveTheFolder()
    {
        string m = DreamBatch();
        string original = File.ReadAllText(m);
        string marker = _tmp.File("touched");
        // A kind with a new line would be a command in the sbatch script.
        EditManifest(m, n => n["kind"] = $"microscope\ntouch {marker}\n#");
        HostileRefusal(_cli.Run("batch", "slurm", m, "--tasks", "1"), "which Reverie does not plan");
        HostileRefusal(_cli.Run("batch", "k8s", m, "--completions", "1", "--image", "reverie:1", "--volume", "data"), "which Reverie does not plan");
        Assert.False(File.Exists(Path.ChangeExtension(m, ".sbatch")));
        // A manifest whose own name holds a new line.
        string badName = _tmp.File("x\ntouch pwned\n.json");
        File.WriteAllText(badName, original);
        HostileRefusal(_cli.Run("batch", "slurm", badName, "--tasks", "1"), "control character");
        Assert.False(File.Exists(Path.ChangeExtension(badName, ".sbatch")));
        Assert.False(File.Exists(marker));
        // An item's stem that climbs out of the product folder, or is absolute.
        foreach (var stem in new[] { "../../../escaped", "/tmp/escaped-" + Guid.NewGuid().ToString("N") })
        {
            File.WriteAllText(m, original);
            EditManifest(m, n => n["items"]![0]!["meta"]!["stem"] = stem);
            HostileRefusal(_cli.Run("batch", "merge", m), "not a plain file name");
            Assert.False(File.Exists(Path.GetFullPath(Path.Combine(_tmp.File("dreams"), "product", stem + ".png"))));
            Assert.False(File.Exists(stem + ".png"));
        }
        File.WriteAllText(m, original);
        Assert.Equal(0, _cli.Run("batch", "merge", m).Code);
    }

    [Fact]
    public void P15_MistakesGetExitTwoAndASentenceInTheUsersTerms()
    {
        HostileRefusal(_cli.Run("explain", _photo, "-m", "textures", "--layer", "logits", "-o", _tmp.File("e.png")), "has no spatial extent");
        string nullInput = _tmp.File("null.json");
        File.WriteAllText(nullInput, """{"command":"dream","version":"0.3.0","options":{"input":null,"model":"textures"}}""");
        HostileRefusal(_cli.Run("replay", nullInput), "the option 'input' is null");
        string nullLayer = _tmp.File("null-layer.json");
        File.WriteAllText(nullLayer, "{\"command\":\"dream\",\"version\":\"0.3.0\",\"options\":{\"input\":\"" + _photo + "\",\"model\":\"textures\",\"layers\":[null]}}");
        HostileRefusal(_cli.Run("replay", nullLayer), "holds a null");
        string unknown = _tmp.File("unknown.json");
        File.WriteAllText(unknown, """{"command":"dream","version":"0.3.0","options":{"input":"x.png","octavez":3,"maxSize":"big"}}""");
        var r = _cli.Run("replay", unknown);
        HostileRefusal(r, "'octavez' is not one of its options");
        Assert.DoesNotContain("System", r.Err);
        string data = Directory.CreateDirectory(_tmp.File("studio")).FullName;
        File.WriteAllBytes(Path.Combine(data, "studio.db"), [.. Enumerable.Range(0, 5000).Select(i => (byte)(i * 7919))]);
        HostileRefusal(_cli.Run("studio", "--port", "0", "--data", data), "is damaged");
    }

    [Fact]
    public void P13_MergingAgainKeepsTheFilesTheUserPutInTheProduct()
    {
        string m = DreamBatch();
        Assert.Equal(0, _cli.Run("batch", "merge", m).Code);
        string product = Path.Combine(_tmp.File("dreams"), "dream");
        Assert.True(File.Exists(Path.Combine(product, "index.json")));
        File.WriteAllText(Path.Combine(product, "notes.txt"), "mine");
        Directory.CreateDirectory(Path.Combine(product, "picks"));
        File.WriteAllText(Path.Combine(product, "picks", "best.txt"), "cup");
        Assert.Equal(0, _cli.Run("batch", "merge", m).Code);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(product, "notes.txt")));
        Assert.Equal("cup", File.ReadAllText(Path.Combine(product, "picks", "best.txt")));
        Assert.True(File.Exists(Path.Combine(product, "index.json")));
    }

    [Fact]
    public void P16_EscapeSequencesFromFilesAndRecipesNeverReachTheTerminal()
    {
        const string Esc = "\u001b]0;pwned\u0007\u001b[2J";
        // A labels file whose names carry escape sequences.
        string labels = _tmp.File("labels.txt");
        File.WriteAllLines(labels, Enumerable.Range(0, 1000).Select(i => $"class{i}{Esc}"));
        Assert.Equal(0, _cli.Run("models", "add", "escaped", Paths.GoogLeNet, "--labels", labels).Code);
        var listed = _cli.Run("models", "info", "escaped");
        var classified = _cli.Run("classify", _photo, "-m", "escaped");
        foreach (var r in new[] { listed, classified }) Assert.DoesNotContain("\u001b]", r.Out + r.Err);
        Assert.Contains("class", classified.Out);
        // A recipe carrying them is refused in one sentence, shown escaped.
        string recipe = _tmp.File("esc.json");
        File.WriteAllText(recipe, System.Text.Json.JsonSerializer.Serialize(new { command = "dream", version = "0.3.0", options = new { input = _photo, model = "textures", layers = new[] { "conv6" + Esc } } }));
        var replay = _cli.Run("replay", recipe);
        HostileRefusal(replay, "control character");
        Assert.DoesNotContain("\u001b", replay.Err);
    }

    [Fact]
    public void P17_EmptySelectionsAreRefusedNotReadAsEverything()
    {
        HostileRefusal(_cli.Run("evaluate", "-m", "fashion", "--data", "fashion-mnist", "--classes", ""), "names no class");
        HostileRefusal(_cli.Run("evaluate", "-m", "fashion", "--data", "fashion-mnist", "--classes", " , "), "names no class");
        HostileRefusal(_cli.Run("train", "--data", "textures", "--per-class", "0", "--epochs", "1", "-o", _tmp.File("t")), "--per-class must be at least 1");
        HostileRefusal(_cli.Run("train", "--data", "textures", "--textures", "0", "--epochs", "1", "-o", _tmp.File("t")), "--textures must be at least 1");
        HostileRefusal(_cli.Run("train", "--data", "textures", "--classes", ",", "--epochs", "1", "-o", _tmp.File("t")), "names no class");
        // A folder of photos with an empty file among them.
        string photos = Directory.CreateDirectory(_tmp.File("photos")).FullName;
        File.Copy(_photo, Path.Combine(photos, "a.png"));
        File.WriteAllBytes(Path.Combine(photos, "b.png"), []);
        string single = _tmp.File("single.png");
        Assert.Equal(0, _cli.Run("dream", _photo, "-m", "textures", "--octaves", "1", "--steps", "1", "-o", single).Code);
        HostileRefusal(_cli.Run("batch", "plan", "dream", "--photos", photos, "--recipe", single, "--out", _tmp.File("d"), "-o", _tmp.File("m.json")), "empty or not a regular file");
    }
}
