using Reverie.Models;
using Reverie.Models.Onnx;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

/// <summary>
/// Channels-last execution of imported graphs: libtorch 2.10's own channels-last 1×1 convolution
/// returns wrong values for many channel counts on this CPU, so Reverie computes those as matrix
/// products. These tests check that replacement on shapes where libtorch's kernel fails (and print
/// libtorch's own error beside it), and the equality of the two layouts on a whole network.
/// </summary>
public class ChannelsLastTests(ITestOutputHelper output)
{
    static Tensor ToChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    [Theory]
    [InlineData(512, 112, 32)]
    [InlineData(192, 208, 14)]
    [InlineData(64, 320, 28)]
    [InlineData(64, 40, 28)]
    [InlineData(480, 64, 28)]
    public void PointwiseConvolutionAsMatrixProductIsRight(int cin, int cout, int side)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var x = rand(1, cin, side, side);
        var w = randn(cout, cin, 1, 1) * 0.05;
        var b = randn(cout);
        var expected = nn.functional.conv2d(x, w, b);
        var xcl = ToChannelsLast(x);
        Assert.True(OnnxOps.IsChannelsLast(xcl));
        Assert.False(OnnxOps.IsChannelsLast(x));
        var mine = OnnxOps.PointwiseChannelsLast(xcl, w, b);
        Assert.True(OnnxOps.IsChannelsLast(mine));
        double e = ((mine - expected).abs().max() / expected.abs().max()).item<float>();
        double libtorch = ((nn.functional.conv2d(xcl, w, b) - expected).abs().max() / expected.abs().max()).item<float>();
        output.WriteLine($"{cin}→{cout} at {side}px: matrix product {e:G3}; libtorch's channels-last kernel {libtorch:G3}");
        Assert.True(e < 1e-5, $"the matrix product differs by {e:G3}");
    }

    [Theory]
    [InlineData(224)]
    [InlineData(320)]
    public void TorchvisionGoogLeNetGivesTheSameLayersAndGradientInBothLayouts(int side)
    {
        using var net = OnnxNetwork.Load(TorchvisionExports.Get("googlenet", 13), input: new InputSpec { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] });
        Assert.True(net.ChannelsLast, "graphs without LRN run channels-last by default");
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = rand(1, 3, side, side);
        var names = net.Layers.Select(l => l.Name).Where(n => n.Contains("inception4") || n.Contains("inception3")).ToList();
        string layer = net.ResolveLayer("inception4c");
        (Dictionary<string, Tensor> Acts, Tensor Grad) Run(bool channelsLast, ScalarType dtype)
        {
            net.ChannelsLast = channelsLast;
            net.To(CPU, dtype);
            var xg = x.clone().to(dtype).requires_grad_(true);
            var acts = net.Forward(xg, names);
            acts[layer].pow(2).sum().backward();
            return (acts.ToDictionary(k => k.Key, k => k.Value.detach().to(ScalarType.Float64).contiguous()), xg.grad!.to(ScalarType.Float64));
        }
        static double Rel(Tensor a, Tensor b) => ((a - b).abs().max() / b.abs().max()).item<double>();
        var (a, _) = Run(false, ScalarType.Float32);
        var (b, _) = Run(true, ScalarType.Float32);
        double worst = a.Keys.Max(k => Rel(b[k], a[k]));
        // Gradients compared in float64: this seeded network's max pools have near-ties that float32 rounding decides.
        var (_, g64) = Run(false, ScalarType.Float64);
        var (_, g64cl) = Run(true, ScalarType.Float64);
        double eg = Rel(g64cl, g64);
        output.WriteLine($"{side}px: {a.Count} layers, worst float32 activation difference {worst:G3}; float64 input gradient difference {eg:G3}");
        Assert.True(worst < 1e-4, $"an activation differs by {worst:G3} between layouts");
        Assert.True(eg < 1e-8, $"the input gradient differs by {eg:G3} between layouts");
    }

    [Fact]
    public void CaffeGoogLeNetWithLrnStaysContiguous()
    {
        using var net = OnnxNetwork.Load(Paths.GoogLeNet);
        Assert.False(net.ChannelsLast);
    }
}
