using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Cli;

/// <summary>dream and visualize on torchvision weights files (seeded random weights written by Debian's torchvision), through the CLI.</summary>
public class NativeModelCliTests(ITestOutputHelper output)
{
    static string Weights(TempDir dir, string arch, string layer)
    {
        string pth = dir.File(arch + ".pth");
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "torchvision_native.py"), arch, layer, pth,
            dir.File("x.f32"), dir.File("logits.f32"), dir.File("layer.f32"), "96");
        Assert.True(code == 0, text);
        return pth;
    }

    [Fact]
    public void DreamsWithVgg19AtNeuralStylesRelu42()
    {
        using var host = new CliHost();
        using var dir = new TempDir();
        string pth = Weights(dir, "vgg19", "features.22");
        string photo = Path.Combine(Paths.RepoRoot, "examples", "coffee.png"), outPng = dir.File("vgg.png");
        var (code, o, e) = host.Run("dream", photo, "--model", pth, "--layer", "relu4_2", "--octaves", "2", "--steps", "3", "--max-size", "160", "-o", outPng);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        using var scope = NewDisposeScope();
        var dream = ImageIO.Load(outPng);
        var before = nn.functional.interpolate(ImageIO.Load(photo), [dream.shape[2], dream.shape[3]], mode: InterpolationMode.Area);
        double change = (dream - before).abs().mean().item<float>();
        output.WriteLine($"mean change {change:0.000}");
        Assert.True(change > 0.005, $"the dream barely changed the photo ({change:0.0000})");
        (code, _, e) = host.Run("dream", photo, "--model", pth, "--layer", "relu9_9", "-o", dir.File("bad.png"));
        Assert.Equal(2, code);
        Assert.Contains("nearest", e);
    }

    [Fact]
    public void VisualizesAnInceptionV3Channel()
    {
        using var host = new CliHost();
        using var dir = new TempDir();
        string pth = Weights(dir, "inception_v3", "Mixed_6e");
        string outPng = dir.File("v.png");
        var (code, o, e) = host.Run("visualize", "--model", pth, "-O", "mixed5d:7", "--size", "128", "--steps", "24", "-o", outPng);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        using var scope = NewDisposeScope();
        var image = ImageIO.Load(outPng);
        Assert.Equal(new long[] { 1, 3, 128, 128 }, image.shape);
        double spread = image.std().item<float>();
        output.WriteLine($"pixel std {spread:0.000}");
        Assert.True(spread > 0.02, $"the visualization is flat (std {spread:0.000})");
    }
}
