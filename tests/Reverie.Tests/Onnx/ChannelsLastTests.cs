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
        var w = randn(cout, cin, 1, 1) * S(0.05);
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
    [InlineData("torchvision", 224)]
    [InlineData("torchvision", 320)]
    [InlineData("bvlc", 224)]
    [InlineData("bvlc", 333)]
    public void GoogLeNetGivesTheSameLayersAndGradientInBothLayouts(string kind, int side)
    {
        // Caffe's GoogLeNet has LRN (a window across channels), torchvision's has none.
        using var net = kind == "bvlc"
            ? OnnxNetwork.Load(Paths.GoogLeNet, input: new InputSpec { Channels = ChannelOrder.Bgr, Scale = 255, Mean = [123.68f, 116.779f, 103.939f] })
            : OnnxNetwork.Load(TorchvisionExports.Get("googlenet", 13), input: new InputSpec { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] });
        Assert.True(net.ChannelsLast, "imported graphs run channels-last by default");
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = rand(1, 3, side, side);
        string layer = net.ResolveLayer(kind == "bvlc" ? "inception_4c/output" : "inception4c");
        var names = net.Layers.Select(l => l.Name).Where(n => n.Contains("inception4") || n.Contains("inception3") || n.Contains("inception_") || n.Contains("norm") || n.StartsWith("conv"))
            .Select(net.ResolveLayer).Append(layer).Distinct().ToList();
        (Dictionary<string, Tensor> Acts, Tensor Grad) Run(bool channelsLast, ScalarType dtype)
        {
            net.ChannelsLast = channelsLast;
            net.To(CPU, dtype);
            var xg = x.clone().to(dtype).requires_grad_(true);
            var acts = net.Forward(xg, names);
            acts[layer].pow(S(2)).sum().backward();
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

    [Theory]
    [InlineData(6, 5)]
    [InlineData(64, 5)]
    [InlineData(192, 4)]
    public void LrnIsTheSameInBothLayouts(int channels, int size)
    {
        // ONNX's LRN: x / (bias + alpha/size · Σ x² over the window)^beta; the window is
        // [c - (size-1)/2, c + size/2] (floor and ceil), so an even size is asymmetric.
        using var scope = NewDisposeScope();
        manual_seed(5);
        var x = randn(2, channels, 7, 9, dtype: ScalarType.Float64) * S(20);
        using var graph = OnnxGraph.FromBytes(new GraphBuilder().Input("x", 2, channels, 7, 9).Output("y")
            .Node("LRN", ["x"], ["y"], GraphBuilder.Int("size", size), GraphBuilder.Float("alpha", 1e-4f), GraphBuilder.Float("beta", 0.75f), GraphBuilder.Float("bias", 1f)).Bytes(), null, "LRN");
        Tensor Run(Tensor input, out Tensor grad)
        {
            var xi = input.detach().requires_grad_(true);
            var y = graph.Run(new Dictionary<string, Tensor> { ["x"] = xi }, ["y"])["y"];
            (y * y.detach().sin()).sum().backward();
            grad = xi.grad!.contiguous();
            return y.contiguous();
        }
        var a = Run(x, out var ga);
        var cl = ToChannelsLast(x);
        Assert.True(OnnxOps.IsChannelsLast(cl));
        var b = Run(cl, out var gb);
        // The reference, written from the operator's definition.
        long front = (size - 1) / 2, back = size - 1 - front;
        var sq = x * x;
        var reference = zeros_like(x);
        for (long c = 0; c < channels; c++)
        {
            long lo = Math.Max(0, c - front), hi = Math.Min(channels - 1, c + back);
            var sum = sq.narrow(1, lo, hi - lo + 1).sum(1);
            reference.select(1, c).copy_(x.select(1, c) / (sum * S((1e-4f / size)) + S(1)).pow(S(0.75)));
        }
        double ea = ((a - reference).abs().max() / reference.abs().max()).item<double>();
        double eb = ((b - reference).abs().max() / reference.abs().max()).item<double>();
        double eg = ((gb - ga).abs().max() / ga.abs().max()).item<double>();
        output.WriteLine($"LRN {channels} channels, size {size}: contiguous {ea:G3}, channels-last {eb:G3} from the definition; gradients {eg:G3} apart");
        Assert.True(ea < 1e-6 && eb < 1e-6, $"LRN differs from its definition: {ea:G3} (contiguous), {eb:G3} (channels-last)");
        Assert.True(eg < 1e-12, $"the LRN gradients differ by {eg:G3} between layouts");
    }
}
