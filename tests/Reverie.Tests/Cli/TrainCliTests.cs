using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using Reverie.Training;
using Xunit.Abstractions;

namespace Reverie.Tests.Cli;

/// <summary><c>reverie train</c>, <c>reverie evaluate</c>, the embedded models and the offline default of <c>reverie dream</c>.</summary>
public class TrainCliTests(ITestOutputHelper output)
{
    /// <summary>An ImageFolder of two texture classes (stripes and dots), 14 images each at 32 px.</summary>
    static string MakeFolder(TempDir dir)
    {
        var set = new TextureDataset(17 * 14, 77, 32);
        foreach (var (cls, name) in new[] { (1, "stripes"), (4, "dots") })
        {
            Directory.CreateDirectory(dir.File(Path.Combine("folder", name)));
            int n = 0;
            for (int i = cls; i < set.Count; i += 17)
                ImageIO.Save(set.Images([i]), dir.File(Path.Combine("folder", name, $"{n++:00}.png")));
        }
        return dir.File("folder");
    }

    [Fact]
    public void TrainsOnAnImageFolderThenEvaluatesAndClassifies()
    {
        using var host = new CliHost();
        string folder = MakeFolder(host.Home);
        string model = host.Home.File("mine");
        var (code, o, e) = host.Run("train", "--data", folder, "--size", "32", "--epochs", "6", "--batch", "8", "--lr", "0.003", "--val-split", "0.25", "-o", model);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        Assert.Contains("best epoch", o);
        var info = Checkpoint.ReadInfo(model + ".json");
        Assert.Equal(["dots", "stripes"], info.Labels);
        Assert.Equal(32, info.Architecture.InputHeight);
        Assert.True(File.Exists(model + "-training.png"));
        // train is a job: its recipe replays the same training, weight for weight.
        string again = host.Home.File("again");
        (code, o, e) = host.Run("replay", model + ".recipe.json", "-o", again + ".json");
        Assert.True(code == 0, e);
        var (w1, w2) = (Reverie.Models.Torch.SafeTensors.Load(model + ".safetensors"), Reverie.Models.Torch.SafeTensors.Load(again + ".safetensors"));
        Assert.Equal(w1.Keys.Order(), w2.Keys.Order());
        foreach (var k in w1.Keys) Assert.True(w1[k].eq(w2[k]).all().item<bool>(), $"{k} differs in the replayed training");
        // The checkpoint's files are Reverie's: training into them again needs no --force; someone else's file does.
        File.WriteAllText(again + "-training.png", "mine");
        (code, _, e) = host.Run("train", "--data", folder, "--size", "32", "--epochs", "1", "-o", again);
        Assert.Equal(2, code);
        Assert.Contains("--force", e);
        File.Delete(again + "-training.png");
        (code, _, e) = host.Run("train", "--data", folder, "--size", "32", "--epochs", "1", "-o", again);
        Assert.True(code == 0, e);

        (code, o, e) = host.Run("evaluate", "--model", model + ".json", "--data", folder, "-o", host.Home.File("cm.png"));
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        Assert.Matches(@"accuracy \d+\.\d\d ?% on 28 images", o);
        Assert.True(File.Exists(host.Home.File("cm.png")));
        // evaluate is a job: its recipe replays the same measurement.
        string accuracy = System.Text.RegularExpressions.Regex.Match(o, @"accuracy \S+ on 28 images").Value;
        (code, o, e) = host.Run("replay", host.Home.File("cm.png"));
        Assert.True(code == 0, e);
        Assert.Contains(accuracy, o);
        Assert.True(File.Exists(host.Home.File("cm-replay.png")));
        // Without -o it measures and writes nothing.
        var before = Directory.GetFiles(host.Home.Path, "*", SearchOption.AllDirectories).Length;
        (code, o, e) = host.Run("evaluate", "--model", model + ".json", "--data", folder);
        Assert.True(code == 0, e);
        Assert.Contains(accuracy, o);
        Assert.Equal(before, Directory.GetFiles(host.Home.Path, "*", SearchOption.AllDirectories).Length);

        (code, o, e) = host.Run("classify", "--model", model + ".json", Path.Combine(folder, "stripes", "00.png"));
        Assert.True(code == 0, e);
        Assert.Contains("stripes", o);
    }

    [Theory]
    [InlineData("unknown architecture", "--data", "textures", "--arch", "wide-resnet-9000", "--epochs", "1")]
    [InlineData("--freeze and --unfreeze-from need --base", "--data", "textures", "--freeze")]
    [InlineData("neither a folder nor a known data set", "--data", "/nowhere/at/all")]
    [InlineData("--epochs must be", "--data", "textures", "--epochs", "0")]
    [InlineData("has no class 'Spaceship'", "--data", "fashion-mnist", "--arch", "fashion", "--classes", "Spaceship,Coat")]
    [InlineData("--base must be a Reverie checkpoint", "--data", "fashion-mnist", "--base", "nothing.json", "--freeze")]
    [InlineData("--adversarial must be none, pgd or fgsm-rs", "--data", "fashion-mnist", "--arch", "fashion", "--adversarial", "fgsm")]
    [InlineData("--eps and --adversarial-steps go with --adversarial", "--data", "fashion-mnist", "--arch", "fashion", "--eps", "0.1")]
    [InlineData("--eps must be above 0 and at most 1", "--data", "fashion-mnist", "--arch", "fashion", "--adversarial", "pgd", "--eps", "0")]
    [InlineData("--adversarial-steps must be from 1 to 100", "--data", "fashion-mnist", "--arch", "fashion", "--adversarial", "pgd", "--adversarial-steps", "0")]
    public void BadTrainingInputGetsOneSentenceAndExitCode2(string message, params string[] args)
    {
        using var host = new CliHost();
        var (code, _, e) = host.Run(["train", .. args, "-o", host.Home.File("m")]);
        Assert.Equal(2, code);
        Assert.Contains(message, e, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", e);
        Assert.False(File.Exists(host.Home.File("m.json")));
    }

    [Fact]
    public void EmbeddedModelsAreSmallAndReproduceTheirRecordedAccuracy()
    {
        foreach (var name in Checkpoint.Embedded)
        {
            var asm = typeof(Checkpoint).Assembly;
            using var w = asm.GetManifestResourceStream($"Reverie.Models.{name}.safetensors");
            Assert.NotNull(w);
            Assert.True(w!.Length <= 5 << 20, $"{name} weighs {w.Length} bytes");
            var info = Checkpoint.EmbeddedInfo(name);
            double recorded = info.Metrics!["testAccuracy"]!.GetValue<double>();
            using var net = Checkpoint.LoadEmbedded(name);
            var test = Datasets.Open(name.StartsWith("fashion") ? "fashion-mnist" : "textures", test: true, name == "textures" ? (int)info.Metrics["testImages"]!.GetValue<long>() : 0);
            var result = Trainer.Evaluate(net, test);
            output.WriteLine($"{name}: {result.Accuracy:P2} on {result.Total} held-out images (recorded {recorded:P2}); {w.Length / 1e6:0.00} MB; recipe: {info.Recipe!["command"]!.ToJsonString()}");
            // Recorded by the training run (on one thread); another thread count changes the last bits of the
            // convolutions, which may flip an image that sits on a decision boundary: allow 0.3%.
            Assert.True(Math.Abs(recorded - result.Accuracy) <= 0.003, $"{name}: {result.Accuracy:P2} now, {recorded:P2} recorded");
            // The issues' targets: 92% on Fashion-MNIST's test set, 95% on the held-out textures, 80% clean for the robust model.
            double required = name switch { "fashion" => 0.92, "textures" => 0.95, "fashion-robust" => 0.80, _ => 0.85 };
            Assert.True(result.Accuracy >= required, $"{name} reaches only {result.Accuracy:P2}");
            if (name == "textures")
            {
                Assert.True(info.Architecture.Layers.Count(l => l.Type == "conv") >= 6, "textures needs at least 6 conv layers");
                Assert.True(info.Labels.Count >= 16);
                Assert.Equal(128, info.Architecture.InputHeight);
            }
            if (name != "fashion-mlp") Assert.NotNull(info.DreamLayer);
        }
    }

    [Fact]
    [Trait("Category", "Slow")]
    public async Task TheMainJobWorksOfflineWithThePackagedResNet18()
    {
        using var host = new CliHost();
        // googlenet's address points at a closed loopback port: no cache, no internet.
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        File.WriteAllText(host.Registry, new JsonObject
        {
            ["models"] = new JsonArray(new JsonObject { ["name"] = "googlenet", ["url"] = $"http://127.0.0.1:{port}/googlenet-7.onnx", ["format"] = "onnx" }),
        }.ToJsonString());
        string outPng = host.Home.File("coffee-dream.png");
        var (code, o, e) = host.Run("dream", Path.Combine(Paths.RepoRoot, "examples", "coffee.png"), "-o", outPng);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        Assert.Contains("'resnet18' (at layer3.1)", e);
        Assert.False(Directory.Exists(Path.Combine(host.Cache, "models", "resnet18")), "the packaged model was copied into the cache");
        using var dream = ImageIO.Load(outPng);
        using var photo = ImageIO.Load(Path.Combine(Paths.RepoRoot, "examples", "coffee.png"));
        Assert.Equal(photo.shape, dream.shape);
        Assert.Equal("resnet18", (string?)Reverie.Recipes.Recipe.Load(outPng).Options!["model"]);
        // The chosen layer's L2 objective, on the photo and on the dream.
        using var net = await new Reverie.Models.Registry.ModelRegistry(host.Home.File("empty-cache"), host.Home.File("none.json")) { Offline = true }.OpenAsync("resnet18");
        string layer = net.ResolveLayer("layer3.1");
        double L2(TorchSharp.torch.Tensor x) { using var _ = TorchSharp.torch.no_grad(); return Reverie.Optimization.Capture.Forward(net, x, [layer])[layer].pow(S(2)).mean().item<float>(); }
        double before = L2(photo), after = L2(dream);
        output.WriteLine($"layer3.1 mean square: photo {before:G4}, dream {after:G4} ({after / before:0.0}x)");
        Assert.True(after >= 3 * before, $"the dream raised layer3.1's L2 only {after / before:0.00}x");
        // --model textures works offline too, and the checkpoint's dream layer is the default.
        (code, _, e) = host.Run("--offline", "dream", Path.Combine(Paths.RepoRoot, "examples", "coffee.png"), "--model", "textures", "--octaves", "2", "--steps", "3", "-o", host.Home.File("t.png"));
        Assert.True(code == 0, e);
    }
}
