using Reverie.Models;
using Reverie.Models.Registry;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Models;

/// <summary>torchvision architectures built natively, loaded from a .pth, against Debian's torchvision.</summary>
public class NativeNetworkTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("vgg19", "features.11", "relu3_1", 64)]
    [InlineData("vgg16", "features.15", "relu3_3", 64)]
    [InlineData("alexnet", "features.5", "pool2", 96)]
    [InlineData("resnet50", "layer3", "layer3", 64)]
    [InlineData("mobilenet_v2", "features.14", "features.14", 96)]
    [InlineData("googlenet", "inception4c", "inception_4c/output", 96)]
    [InlineData("inception_v3", "Mixed_6e", "mixed6e", 128)]
    public void MatchesTorchvision(string arch, string module, string name, int side)
    {
        using var dir = new TempDir();
        string pth = dir.File(arch + ".pth");
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "torchvision_native.py"), arch, module, pth,
            dir.File("x.f32"), dir.File("logits.f32"), dir.File("layer.f32"), $"{side}");
        Assert.True(code == 0, text);
        using var net = ModelRegistry.OpenWeights(pth);
        Assert.Equal(arch, net.Name);
        Assert.Equal(module, net.ResolveLayer(name));
        using var scope = NewDisposeScope();
        var x = tensor(RawFloats.Read(dir.File("x.f32"))).reshape(1, 3, side, side);
        IReadOnlyDictionary<string, Tensor> acts;
        using (no_grad()) acts = net.Forward(x, [name, net.OutputLayer]);
        var logits = tensor(RawFloats.Read(dir.File("logits.f32"))).reshape(1, 1000);
        var layer = tensor(RawFloats.Read(dir.File("layer.f32"))).reshape(acts[name].shape);
        double RelErr(Tensor a, Tensor b) => ((a - b).abs().max() / b.abs().max()).item<float>();
        double e1 = RelErr(acts[net.OutputLayer], logits), e2 = RelErr(acts[name], layer);
        output.WriteLine($"{arch} at {side} px: logits max relative error {e1:G3}, {name} {e2:G3}");
        Assert.True(e1 <= 1e-4, $"logits differ by {e1:G3}");
        Assert.True(e2 <= 1e-4, $"{name} differs by {e2:G3}");
        var ex = Assert.Throws<BadInputException>(() => net.ResolveLayer("relu9_9"));
        Assert.Contains("nearest", ex.Message);
    }

    /// <summary>
    /// The brief's matrix: each architecture saved by torch.save in the zip and the legacy format, in
    /// float32 and float16, and as safetensors in both; every file gives torchvision's logits within
    /// 1e-4 and its input gradient at an inner layer within 1e-3 (relative to the largest magnitude),
    /// against torchvision holding the same (rounded) weights. VGG-16 left the matrix with issue 37 (37 s and
    /// 4 GB of the suite's peak for the same builder and readers as VGG-19's row): it is checked against
    /// torchvision from a zip .pth in <see cref="MatchesTorchvision"/>.
    /// </summary>
    [Theory]
    [Trait("Category", "Slow")]
    [InlineData("vgg19", "features.22", 64)]
    [InlineData("alexnet", "features.5", 96)]
    [InlineData("resnet50", "layer2", 64)]
    [InlineData("mobilenet_v2", "features.7", 64)]
    [InlineData("googlenet", "inception4c", 96)]
    [InlineData("inception_v3", "Mixed_5d", 128)]
    public void EveryFileFormatGivesTorchvisionsLogitsAndInputGradient(string arch, string module, int side)
    {
        using var dir = new TempDir();
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "torchvision_matrix.py"), arch, module, dir.Path, $"{side}");
        Assert.True(code == 0, text);
        using var scope = NewDisposeScope();
        var x = tensor(RawFloats.Read(dir.File("x.f32"))).reshape(1, 3, side, side);
        static double RelErr(Tensor a, Tensor b) => ((a - b).abs().max() / b.abs().max()).item<float>();
        foreach (var precision in new[] { "float32", "float16" })
        {
            var logits = tensor(RawFloats.Read(dir.File($"logits_{precision}.f32"))).reshape(1, 1000);
            var grad = tensor(RawFloats.Read(dir.File($"grad_{precision}.f32"))).reshape(1, 3, side, side);
            Assert.True(grad.abs().max().item<float>() > 0, "the reference gradient is zero, so comparing it would prove nothing");
            foreach (var file in new[] { $"zip_{precision}.pth", $"legacy_{precision}.pth", $"{precision}.safetensors" })
            {
                using var net = ModelRegistry.OpenWeights(dir.File(file));
                Tensor mine;
                using (no_grad()) mine = net.Forward(x, [net.OutputLayer])[net.OutputLayer];
                var xg = x.clone().requires_grad_(true);
                net.Forward(xg, [module])[module].pow(S(2)).mean().backward();
                // Opened to be looked at: the backward pass computes the image's gradient, none for the weights.
                Assert.DoesNotContain(((TorchSharp.torch.nn.Module)net).parameters(), p => p.requires_grad || p.grad is not null);
                double e1 = RelErr(mine, logits), e2 = RelErr(xg.grad!, grad);
                output.WriteLine($"{arch} {file,-22} logits {e1:E2}  input gradient at {module} {e2:E2}");
                Assert.True(e1 <= 1e-4, $"{file}: logits differ by {e1:G3}");
                Assert.True(e2 <= 1e-3, $"{file}: the input gradient differs by {e2:G3}");
            }
            foreach (var f in Directory.GetFiles(dir.Path, $"*{precision}*")) File.Delete(f);
        }
    }

    /// <summary>
    /// The ReLU-gradient redirect of feature visualization's first steps works on natively built networks
    /// (until issue 38 it reached only imported ONNX graphs, and did nothing here): inside it, the input
    /// gradient matches a PyTorch reference whose ReLUs (and MobileNet's ReLU6s) are an autograd function
    /// passing 0.1 of the gradient where they are off; outside it, plain torchvision's gradient. The two
    /// must differ by ten times the tolerance (alexnet: 3.9%, mobilenet_v2: more), or the comparison would prove nothing.
    /// </summary>
    [Theory]
    [InlineData("alexnet", "features.8", 96)]
    [InlineData("mobilenet_v2", "features.7", 64)]
    public void TheReluGradientRedirectWorksOnNativeNetworks(string arch, string module, int side)
    {
        using var dir = new TempDir();
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "relu_redirect.py"), arch, module, dir.Path, $"{side}", "0.1");
        Assert.True(code == 0, text);
        using var net = ModelRegistry.OpenWeights(dir.File("weights.pth"));
        using var scope = NewDisposeScope();
        var x = tensor(RawFloats.Read(dir.File("x.f32"))).reshape(1, 3, side, side);
        Tensor Gradient(bool redirect)
        {
            var xg = x.clone().requires_grad_(true);
            using (redirect ? ReluGradients.Redirect(0.1) : null)
                net.Forward(xg, [module])[module].pow(S(2)).mean().backward();
            return xg.grad!;
        }
        Tensor Reference(string name) => tensor(RawFloats.Read(dir.File(name))).reshape(1, 3, side, side);
        static double RelErr(Tensor a, Tensor b) => ((a - b).abs().max() / b.abs().max()).item<float>();
        double plain = RelErr(Gradient(false), Reference("plain.f32")), leaky = RelErr(Gradient(true), Reference("leaky.f32"));
        double apart = RelErr(Reference("leaky.f32"), Reference("plain.f32"));
        output.WriteLine($"{arch} at {side} px, gradient of mean({module}²): plain {plain:E2}, redirected {leaky:E2} from PyTorch's; the redirect moves it by {apart:P1}");
        Assert.True(apart > 0.01, $"the redirect changes the reference gradient by only {apart:P2}, too little beside the 1e-3 tolerance");
        Assert.True(plain <= 1e-3, $"plain gradient differs by {plain:G3}");
        Assert.True(leaky <= 1e-3, $"redirected gradient differs by {leaky:G3}");
    }

    [Fact]
    public void Vgg19HasNeuralStyleNames()
    {
        using var net = Reverie.Models.Native.Vgg.Create(19);
        Assert.Equal("features.22", net.ResolveLayer("relu4_2"));
        Assert.Equal("features.34", net.ResolveLayer("conv5_4"));
        Assert.Equal("features.36", net.ResolveLayer("pool5"));
        Assert.Equal("classifier.6", net.ResolveLayer("fc8"));
        Assert.Equal(new long[] { 1, 512, 28, 28 }, net.Layers.First(l => l.Name == "features.22").Shape);
    }
}
