using System.Text.Json.Nodes;
using Reverie.Models.Torch;
using Reverie.Tests.Infrastructure;
using Reverie.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Training;

/// <summary>Reverie's own classifiers: the network against PyTorch, the trainer, checkpoints, resume and transfer learning.</summary>
public class TrainingTests(ITestOutputHelper output)
{
    static ConvNetSpec NoDropout(ConvNetSpec s) => s with { Layers = s.Layers.Where(l => l.Type != "dropout").ToList() };

    [Fact]
    public void ConvNetAndOneTrainingStepMatchPyTorch()
    {
        using var dir = new TempDir();
        var spec = NoDropout(Architectures.Get("fashion", 10));
        var input = Architectures.InputFor(spec, "fashion");
        using var net = new ConvNet("peer", spec, input, Datasets.FashionMnistClasses, seed: 3);
        var state = Trainer.StateDict(net);
        TorchFileWriter.Save(dir.File("w.pth"), state);
        Checkpoint.Save(dir.File("peer"), state, new CheckpointInfo { Name = "peer", Architecture = spec, Input = net.Input, Labels = Datasets.FashionMnistClasses });

        var gen = new Generator(11);
        var gray = rand([16, 1, 28, 28], generator: gen);
        var labels = Enumerable.Range(0, 16).Select(i => (i * 7) % 10).ToArray();
        File.WriteAllBytes(dir.File("x.f32"), gray.contiguous().bytes.ToArray());
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "convnet_peer.py"), dir.File("peer.json"), dir.File("w.pth"),
            dir.File("x.f32"), string.Join(",", labels), "0.01", dir.File("peer"));
        Assert.True(code == 0, text);

        var rgb = gray.expand(-1, 3, -1, -1);
        using (no_grad())
        {
            var logits = net.forward(rgb);
            var peer = tensor(RawFloats.Read(dir.File("peer/logits.f32"))).reshape(16, 10);
            double e = (logits - peer).abs().max().item<float>();
            output.WriteLine($"eval logits: max abs difference {e:G3} (scale {peer.abs().max().item<float>():G3})");
            Assert.True(e < 1e-4, $"logits differ by {e}");
        }

        // One step: train-mode batch norm, cross-entropy, AdamW (lr 0.01; the cosine schedule's first step is the peak).
        var data = new TensorDataset("peer", rgb, labels, Datasets.FashionMnistClasses);
        new Trainer(net, new TrainOptions { Epochs = 1, BatchSize = 16, LearningRate = 0.01 }).Run(data, null);
        // Gradients agree closely. Adam's first step moves each weight by lr·g/(|g|+eps), which for
        // gradients near eps (1e-8) amplifies rounding; compare the step where |g| > 1e-6.
        double worstGrad = 0, worstStep = 0;
        var parameters = net.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (k, t) in net.state_dict())
        {
            var peer = tensor(RawFloats.Read(dir.File($"peer/after.{k}.f32"))).reshape(t.shape);
            var diff = (t.to(ScalarType.Float32) - peer).abs();
            if (parameters.TryGetValue(k, out var p))
            {
                var g = tensor(RawFloats.Read(dir.File($"peer/grad.{k}.f32"))).reshape(t.shape);
                double eg = ((p.grad! - g).abs().max() / (g.abs().max() + S(1e-12))).item<float>();
                worstGrad = Math.Max(worstGrad, eg);
                Assert.True(eg < 1e-4, $"the gradient of {k} differs from PyTorch's by {eg:G3} (relative)");
                var mask = g.abs() > S(1e-6);
                diff = diff.masked_select(mask);
            }
            double e = diff.numel() == 0 ? 0 : diff.max().item<float>();
            worstStep = Math.Max(worstStep, e);
            Assert.True(e < 1e-5, $"{k} differs from PyTorch's by {e} after one step");
        }
        output.WriteLine($"one AdamW step: worst relative gradient difference {worstGrad:G3}; worst parameter/buffer difference after the step {worstStep:G3} over {net.state_dict().Count} tensors");
        // The step moved the weights by about the learning rate, far more than the tolerance.
        Assert.True((net.state_dict()["conv1.conv.weight"] - state["conv1.conv.weight"]).abs().max().item<float>() > 5e-3);
    }

    [Fact]
    public void ReducedBudgetFashionTrainingLearns()
    {
        using var dir = new TempDir();
        var result = TrainingRun.Finished(new TrainingJobOptions
        {
            Data = "fashion-mnist", Arch = "fashion", PerClass = 300, ValidationSplit = 0.1, Epochs = 3, Seed = 1,
        }, dir.File("f"));
        var h = result.History;
        foreach (var m in h) output.WriteLine($"epoch {m.Epoch}: loss {m.TrainLoss:0.000}, train {m.TrainAccuracy:P1}, validation {m.ValidationAccuracy:P1}");
        double accuracy = result.TestAccuracy!.Value;
        output.WriteLine($"test accuracy {accuracy:P2} on {result.TestImages}");
        Assert.True(h[^1].TrainLoss < 0.6 * h[0].TrainLoss, "the training loss did not fall clearly");
        Assert.True(accuracy > 0.7, $"test accuracy {accuracy:P1} is not clearly above chance (10%)");
        Assert.Equal(10000, result.TestImages);
        foreach (var f in new[] { "f.json", "f.safetensors", "f.recipe.json", "f-training.png", "f-confusion.png" }) Assert.True(File.Exists(dir.File(f)), f);
        foreach (var f in new[] { "f.safetensors", "f-training.png", "f-confusion.png" }) Assert.True(Reverie.Imaging.OutputFiles.WrittenByReverie(dir.File(f)), $"{f} is not recognized as Reverie's");
        Assert.False(File.Exists(dir.File("f.last.json")), "the resume state should be removed after a finished run");

        // The checkpoint reloads to the same predictions and records its recipe and metrics.
        var info = Checkpoint.ReadInfo(dir.File("f.json"));
        Assert.Equal(accuracy, info.Metrics!["testAccuracy"]!.GetValue<double>());
        Assert.Equal("train", info.Recipe!["command"]!.GetValue<string>());
        Assert.Equal("fashion", info.Recipe!["options"]!["arch"]!.GetValue<string>());
        Assert.Equal(3, info.Recipe!["steps"]!.GetValue<int>());
        using var loaded = Checkpoint.Load(dir.File("f"));
        var again = Trainer.Evaluate(loaded, Datasets.Open("fashion-mnist", true));
        Assert.Equal(accuracy, again.Accuracy);
    }

    [Fact]
    public void ReducedBudgetTexturesTrainingLearns()
    {
        using var dir = new TempDir();
        var result = TrainingRun.Finished(new TrainingJobOptions
        {
            Data = "textures", Arch = "small", TextureCount = 17 * 50, Size = 64, ValidationSplit = 0, Epochs = 4, BatchSize = 32, LearningRate = 3e-3, Seed = 1,
        }, dir.File("t"));
        var h = result.History;
        foreach (var m in h) output.WriteLine($"epoch {m.Epoch}: loss {m.TrainLoss:0.000}, train {m.TrainAccuracy:P1}");
        double accuracy = result.TestAccuracy!.Value;
        output.WriteLine($"held-out accuracy {accuracy:P2} on {result.TestImages}");
        Assert.True(h[^1].TrainLoss < 0.7 * h[0].TrainLoss, "the training loss did not fall clearly");
        Assert.True(accuracy > 3.0 / 17, $"held-out accuracy {accuracy:P1} is not clearly above chance ({1.0 / 17:P1})");
    }

    [Fact]
    public void ResumeContinuesExactlyWhereTheRunStopped()
    {
        using var dir = new TempDir();
        TrainingJobOptions Options(bool resume = false) => new()
        {
            Data = "fashion-mnist", Arch = "fashion", Classes = ["Trouser", "Bag", "Sandal"], PerClass = 60, ValidationSplit = 0.2, Resume = resume,
            Epochs = 3, BatchSize = 50, Seed = 5,
        };
        TrainingRun.Finished(Options(), dir.File("straight"));
        using (var cts = new CancellationTokenSource())
        {
            var (stopped, _) = TrainingRun.Run(Options(), dir.File("stopped"), log: line => { if (line.StartsWith("epoch 2/3")) cts.Cancel(); }, cancel: cts.Token);
            Assert.True(stopped.Interrupted);
            Assert.Empty(stopped.Files);
            Assert.Contains("--resume", stopped.Summary);
        }
        Assert.True(File.Exists(dir.File("stopped.last.json")));
        Assert.False(File.Exists(dir.File("stopped.json")));
        var ex = Assert.Throws<BadInputException>(() => TrainingRun.Run(Options(resume: true) with { Seed = 6 }, dir.File("stopped")));
        Assert.Contains("seed", ex.Message);
        var lines = new List<string>();
        TrainingRun.Run(Options(resume: true), dir.File("stopped"), log: lines.Add);
        Assert.Contains(lines, l => l.Contains("resuming after epoch 2"));
        var a = SafeTensors.Load(dir.File("straight.safetensors"));
        var b = SafeTensors.Load(dir.File("stopped.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var k in a.Keys) Assert.True(a[k].eq(b[k]).all().item<bool>(), $"{k} differs between the straight and the resumed run");
        var ha = Checkpoint.ReadInfo(dir.File("straight.json")).Metrics!["history"]!.AsArray();
        var hb = Checkpoint.ReadInfo(dir.File("stopped.json")).Metrics!["history"]!.AsArray();
        Assert.Equal(ha.Count, hb.Count);
        for (int i = 0; i < ha.Count; i++) Assert.Equal(ha[i]!["trainLoss"]!.GetValue<double>(), hb[i]!["trainLoss"]!.GetValue<double>());
    }

    [Fact]
    public void CheckpointsRefuseBrokenFiles()
    {
        using var dir = new TempDir();
        var spec = Architectures.Get("fashion", 10);
        using var net = new ConvNet("c", spec, Architectures.InputFor(spec, "fashion"), Datasets.FashionMnistClasses);
        Checkpoint.Save(dir.File("c"), Trainer.StateDict(net), new CheckpointInfo { Name = "c", Architecture = spec, Input = net.Input, Labels = Datasets.FashionMnistClasses });
        using (var ok = Checkpoint.Load(dir.File("c.json"))) Assert.Equal(10, ok.Labels!.Count);

        File.WriteAllText(dir.File("bad.json"), "{ not json");
        Assert.Throws<BadInputException>(() => Checkpoint.Load(dir.File("bad.json")));
        var json = JsonNode.Parse(File.ReadAllText(dir.File("c.json")))!;
        json["architecture"]!["layers"]![0]!["type"] = "teleport";
        File.WriteAllText(dir.File("c2.json"), json.ToJsonString());
        File.Copy(dir.File("c.safetensors"), dir.File("c2.safetensors"));
        json["weights"] = "c2.safetensors";
        File.WriteAllText(dir.File("c2.json"), json.ToJsonString());
        Assert.Contains("teleport", Assert.Throws<BadInputException>(() => Checkpoint.Load(dir.File("c2.json"))).Message);
        // Weights of another shape.
        var small = Trainer.StateDict(net);
        small["logits.weight"] = zeros(3, 256);
        SafeTensors.Save(dir.File("c.safetensors"), small);
        Assert.Contains("logits.weight", Assert.Throws<BadInputException>(() => Checkpoint.Load(dir.File("c"))).Message);
        // Truncated weights.
        File.WriteAllBytes(dir.File("c.safetensors"), File.ReadAllBytes(dir.File("c2.safetensors"))[..1000]);
        Assert.Throws<BadInputException>(() => Checkpoint.Load(dir.File("c")));
    }

    [Fact]
    public void CorruptIdxFilesAreRefused()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("train-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3]);
        File.WriteAllBytes(dir.File("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
        Assert.Contains("truncated", Assert.Throws<BadInputException>(() => FashionMnist.Load(dir.Path, false)).Message);
        File.WriteAllBytes(dir.File("train-images-idx3-ubyte"), [0, 0, 9, 3]);
        Assert.Contains("IDX", Assert.Throws<BadInputException>(() => FashionMnist.Load(dir.Path, false)).Message);
        Assert.Contains("dataset-fashion-mnist", Assert.Throws<BadInputException>(() => FashionMnist.Load(dir.File("nowhere"), true)).Message);
    }

    [Fact]
    public void TexturesAreDeterministicBalancedAndDistinct()
    {
        var a = new TextureDataset(34, TextureDataset.TrainSeed, 64);
        var b = new TextureDataset(34, TextureDataset.TrainSeed, 64, cache: false);
        var test = new TextureDataset(34, TextureDataset.TestSeed, 64);
        Assert.True(TextureDataset.ClassNames.Length >= 16);
        Assert.All(Datasets.ClassCounts(a), c => Assert.Equal(2, c));
        using var scope = NewDisposeScope();
        var ia = a.Images(Enumerable.Range(0, 34).ToList());
        var ib = b.Images(Enumerable.Range(0, 34).ToList());
        var it = test.Images(Enumerable.Range(0, 34).ToList());
        Assert.True((ia - ib).abs().max().item<float>() <= 0.5f / 255 + 1e-6, "the same seed must give the same images (up to the cache's 8-bit rounding)");
        Assert.True((ia - it).abs().mean().item<float>() > 0.05, "the held-out seed must give other images");
        // Every image has real contrast (two colours), and values stay in 0..1.
        var std = ia.flatten(1).std(1);
        Assert.True(std.min().item<float>() > 0.04, $"an image is nearly flat (std {std.min().item<float>()})");
        Assert.InRange(ia.min().item<float>(), 0, 1);
        Assert.InRange(ia.max().item<float>(), 0, 1);
    }
}
