using Reverie.Models;
using Reverie.Models.Native;
using Reverie.Models.Registry;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Models;

/// <summary>torchvision's VGG-19 built natively, loaded from a .pth, against Debian's torchvision.</summary>
public class NativeVggTests(ITestOutputHelper output)
{
    [Fact]
    public void Vgg19MatchesTorchvision()
    {
        using var dir = new TempDir();
        const int side = 64;
        string pth = dir.File("vgg19.pth");
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "torchvision_vgg.py"), "19", pth, dir.File("x.f32"), dir.File("logits.f32"), dir.File("relu3_1.f32"), $"{side}");
        Assert.True(code == 0, text);
        using var net = (Vgg)ModelRegistry.OpenWeights(pth);
        Assert.Equal("vgg19", net.Name);
        Assert.Equal("features.11", net.ResolveLayer("relu3_1"));
        Assert.Equal("features.22", net.ResolveLayer("relu4_2"));
        Assert.Equal("features.34", net.ResolveLayer("conv5_4"));
        using var scope = NewDisposeScope();
        var x = tensor(RawFloats.Read(dir.File("x.f32"))).reshape(1, 3, side, side);
        IReadOnlyDictionary<string, Tensor> acts;
        using (no_grad()) acts = net.Forward(x, ["relu3_1", net.OutputLayer]);
        var logits = tensor(RawFloats.Read(dir.File("logits.f32"))).reshape(1, 1000);
        var relu31 = tensor(RawFloats.Read(dir.File("relu3_1.f32"))).reshape(acts["relu3_1"].shape);
        double RelErr(Tensor a, Tensor b) => ((a - b).abs().max() / b.abs().max()).item<float>();
        double e1 = RelErr(acts[net.OutputLayer], logits), e2 = RelErr(acts["relu3_1"], relu31);
        output.WriteLine($"VGG-19 at {side} px: logits max relative error {e1:G3}, relu3_1 {e2:G3}");
        Assert.True(e1 <= 1e-4, $"logits differ by {e1:G3}");
        Assert.True(e2 <= 1e-4, $"relu3_1 differs by {e2:G3}");
        var ex = Assert.Throws<BadInputException>(() => net.ResolveLayer("relu9_9"));
        Assert.Contains("nearest", ex.Message);
    }
}
