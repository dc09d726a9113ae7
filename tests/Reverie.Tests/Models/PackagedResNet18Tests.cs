using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Models.Registry;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Models;

/// <summary>
/// resnet18, the ImageNet network that comes with the build (NuGet's Microsoft.ML.DnnImageFeaturizer.ResNet18):
/// found with no download, equal to ONNX Runtime on the packaged file, readable layer names, any image size.
/// </summary>
public class PackagedResNet18Tests(ITestOutputHelper log)
{
    static readonly string PackageTools = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } n ? n
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"), "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", "DnnImageModels");

    static ModelRegistry EmptyRegistry(TempDir home) => new(home.File("cache"), home.File("models.json")) { Offline = true };

    [Fact]
    public async Task IsPackagedBesideTheBuildAndOpensOfflineWithAnEmptyCache()
    {
        using var home = new TempDir();
        var reg = EmptyRegistry(home);
        var e = reg.Get("resnet18");
        Assert.Equal(ModelStatus.Packaged, reg.Status(e));
        Assert.StartsWith(AppContext.BaseDirectory, ModelRegistry.PackagedPath(e)!);
        using var net = await reg.OpenAsync("resnet18");
        Assert.False(Directory.Exists(home.File("cache")), "opening a packaged model wrote to the cache");
        // The layer table has torchvision's names, with the right shapes.
        var shapes = new Dictionary<string, (int C, int H)> { ["layer1.0"] = (64, 56), ["layer1.1"] = (64, 56), ["layer2.0"] = (128, 28), ["layer2.1"] = (128, 28), ["layer3.0"] = (256, 14), ["layer3.1"] = (256, 14), ["layer4.0"] = (512, 7), ["layer4.1"] = (512, 7) };
        using var scope = NewDisposeScope();
        var acts = net.Forward(zeros(1, 3, 224, 224), shapes.Keys.Select(net.ResolveLayer).ToList());
        foreach (var (name, (c, h)) in shapes)
            Assert.Equal(new long[] { 1, c, h, h }, acts[net.ResolveLayer(name)].shape);
        // A block's pre_relu is its residual sum, of which the block's output is the ReLU.
        var pre = net.Forward(zeros(1, 3, 224, 224) + S(0.5), [net.ResolveLayer("layer3.1/pre_relu"), net.ResolveLayer("layer3.1")]);
        Assert.True(pre[net.ResolveLayer("layer3.1/pre_relu")].min().item<float>() < 0);
        Assert.Equal(0f, (pre[net.ResolveLayer("layer3.1/pre_relu")].relu() - pre[net.ResolveLayer("layer3.1")]).abs().max().item<float>());
    }

    [Fact]
    public async Task MatchesOnnxRuntimeOnThePackagedFileChainedWithItsPreprocessing()
    {
        using var scope = NewDisposeScope();
        using var photo = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 224, 224);
        float[] rgb255 = (photo * S(255)).flatten().data<float>().ToArray();
        int[] shape = [1, 3, 224, 224];
        // ONNX Runtime: the package's own preprocessing graph (RGB to BGR, minus its mean image), then the network.
        var prep = Ort.Run(File.ReadAllBytes(Path.Combine(PackageTools, "ResNetPrepOnnx", "ResNetPreprocess.onnx")), "OriginalInput", rgb255, shape)["PreprocessedInput"];
        string model = Path.Combine(PackageTools, "ResNet18Onnx", "ResNet18.onnx");
        var ort = Ort.Run(File.ReadAllBytes(model), "Input247", prep.Data, shape, "Pooling395_Output_0")["Pooling395_Output_0"];
        // Reverie's import on the same preprocessed input.
        using var g = Reverie.Models.Onnx.OnnxGraph.Load(model);
        var mine = g.Run(new Dictionary<string, Tensor> { ["Input247"] = tensor(prep.Data).reshape(1, 3, 224, 224) }, ["Pooling395_Output_0"])["Pooling395_Output_0"].flatten();
        var reference = tensor(ort.Data);
        double rel = (mine - reference).abs().max().item<float>() / reference.abs().max().item<float>();
        log.WriteLine($"pool5: max |Reverie − ORT| / max |ORT| = {rel:E2}");
        Assert.True(rel <= 1e-4, $"relative difference {rel:E2}");
        // The registry's per-channel mean in place of the mean image: how much the features move.
        using var net = await new ModelRegistry().OpenAsync("resnet18");
        var approx = net.Forward(photo, [net.ResolveLayer("avgpool")])[net.ResolveLayer("avgpool")].flatten();
        double change = (approx - reference).norm().item<float>() / reference.norm().item<float>();
        double cosine = (approx * reference).sum().item<float>() / (approx.norm().item<float>() * reference.norm().item<float>());
        log.WriteLine($"per-channel mean instead of the mean image: pool5 changes by {change:P2} (L2), cosine {cosine:F5}");
        Assert.True(cosine > 0.99, $"cosine {cosine}");
    }

    [Theory]
    [InlineData(601, 401)]
    [InlineData(333, 517)]
    public async Task DreamsAtAnySizeAndComesBackAtThePhotosSize(int width, int height)
    {
        using var scope = NewDisposeScope();
        using var net = await new ModelRegistry().OpenAsync("resnet18");
        var photo = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), height, width);
        var layer = net.ResolveLayer("layer3.1");
        double Score(Tensor x) { using var _ = no_grad(); return Reverie.Optimization.Capture.Forward(net, x, [layer])[layer].pow(S(2)).mean().item<float>(); }
        var objective = Reverie.Objectives.ObjectiveLanguage.Parse(net, "layer3.1");
        var dream = new DeepDream(net, objective, new DreamOptions { Octaves = 4, OctaveScale = 1.4, Steps = 10, Tile = 0 }).Run(photo);
        Assert.Equal(new long[] { 1, 3, height, width }, dream.shape);
        double before = Score(photo), after = Score(dream);
        log.WriteLine($"{width}x{height}: layer3.1 mean square {before:G4} -> {after:G4}");
        Assert.True(after >= 3 * before, $"{before} -> {after}");
    }

    /// <summary>Every model of the test set dreams at odd sizes and comes back at the photo's size, and refuses a 1×1 image in one sentence.</summary>
    [Theory]
    [InlineData("resnet18", "layer3.1")]
    [InlineData("bvlc", "inception_4c/output")]
    [InlineData("squeezenet", "fire7/concat")]
    [InlineData("textures", "conv4")]
    public async Task EveryTestModelTakesOddSizesAndRefusesTinyOnes(string model, string layerName)
    {
        using var scope = NewDisposeScope();
        string open = model switch { "bvlc" => Paths.GoogLeNet, "squeezenet" => Path.Combine(Paths.Models, "squeezenet1.0_fp16.onnx"), _ => model };
        using var net = await new ModelRegistry().OpenAsync(open);
        string layer = net.HasLayer(layerName) ? layerName : net.Layers[net.Layers.Count / 2].Name;
        var photo = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 517, 333);
        var objective = Reverie.Objectives.ObjectiveLanguage.Parse(net, layer);
        var dream = new DeepDream(net, objective, new DreamOptions { Octaves = 4, OctaveScale = 1.4, Steps = 1, Tile = 0 }).Run(photo);
        Assert.Equal(new long[] { 1, 3, 517, 333 }, dream.shape);
        var e = Assert.Throws<BadInputException>(() => new DeepDream(net, objective, new DreamOptions { Octaves = 1, Steps = 1, Tile = 0 }).Run(zeros(1, 3, 1, 1)));
        Assert.Contains("too small", e.Message);
    }

    [Fact]
    public async Task AnImageTooSmallIsOneSentence()
    {
        using var net = await new ModelRegistry().OpenAsync("resnet18");
        var e = Assert.Throws<BadInputException>(() => Reverie.Optimization.Capture.Forward(net, zeros(1, 3, 8, 8), [net.ResolveLayer("layer4.1")]));
        Assert.Contains("too small", e.Message);
    }
}
