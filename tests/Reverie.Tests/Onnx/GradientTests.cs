using Reverie.Models;
using Reverie.Models.Onnx;
using Reverie.Tests.Infrastructure;
using static Reverie.Tests.Infrastructure.GraphBuilder;
using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

/// <summary>Input gradients of imported graphs against central finite differences (float64).</summary>
public class GradientTests
{
    internal static void CheckGradient(GraphBuilder b, long[] inputShape, int seed = 1)
    {
        using var scope = NewDisposeScope();
        using var g = OnnxGraph.FromBytes(b.Bytes(), null, "test graph");
        var gen = manual_seed(seed);
        var x = rand(inputShape, dtype: ScalarType.Float64) * S(2) - S(1);
        string outName = g.OutputNames[0];
        Tensor F(Tensor input) => g.Run(new Dictionary<string, Tensor> { [g.InputNames[0]] = input }, [outName])[outName];
        var probe = F(x);
        var w = rand(probe.shape, dtype: ScalarType.Float64) - S(0.5);
        var xg = x.clone().requires_grad_(true);
        (F(xg) * w).sum().backward();
        var analytic = xg.grad!.flatten();
        var flat = x.flatten();
        var rng = new Random(seed);
        const double h = 1e-6;
        for (int k = 0; k < 25; k++)
        {
            long i = rng.NextInt64(flat.shape[0]);
            var xp = flat.clone(); xp[i] += S(h);
            var xm = flat.clone(); xm[i] -= S(h);
            double fp = (F(xp.reshape(inputShape)) * w).sum().item<double>();
            double fm = (F(xm.reshape(inputShape)) * w).sum().item<double>();
            double numeric = (fp - fm) / (2 * h);
            double a = analytic[i].item<double>();
            Assert.True(Math.Abs(a - numeric) <= 1e-6 + 1e-5 * Math.Abs(numeric), $"index {i}: autograd {a} vs finite difference {numeric}");
        }
        Assert.True(analytic.abs().sum().item<double>() > 0, "the gradient is identically zero");
    }

    [Fact]
    public void Conv() => CheckGradient(new GraphBuilder().Input("x", 1, 3, 9, 9).Output("y")
        .Weight("w", -1, 1, 4, 3, 3, 3).Weight("b", -1, 1, 4)
        .Node("Conv", ["x", "w", "b"], ["y"], Ints("pads", 1, 0, 2, 1), Ints("strides", 2, 1)), [1, 3, 9, 9]);

    [Fact]
    public void GroupedDilatedConv() => CheckGradient(new GraphBuilder().Input("x", 1, 4, 10, 10).Output("y")
        .Weight("w", -1, 1, 4, 2, 3, 3)
        .Node("Conv", ["x", "w"], ["y"], Ints("dilations", 2, 2), Int("group", 2), Ints("pads", 2, 2, 2, 2)), [1, 4, 10, 10]);

    [Fact]
    public void MaxPoolCeilAndPads() => CheckGradient(new GraphBuilder().Input("x", 1, 2, 8, 8).Output("y")
        .Node("MaxPool", ["x"], ["y"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Int("ceil_mode", 1)), [1, 2, 8, 8]);

    [Fact]
    public void AveragePoolExcludingPads() => CheckGradient(new GraphBuilder().Input("x", 1, 2, 7, 7).Output("y")
        .Node("AveragePool", ["x"], ["y"], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Int("ceil_mode", 1)), [1, 2, 7, 7]);

    [Fact]
    public void Lrn() => CheckGradient(new GraphBuilder().Input("x", 1, 6, 4, 4).Output("y")
        .Node("LRN", ["x"], ["y"], Int("size", 5), Float("alpha", 0.5f), Float("beta", 0.75f), Float("bias", 1f)), [1, 6, 4, 4]);

    [Fact]
    public void BatchNorm() => CheckGradient(new GraphBuilder().Input("x", 1, 3, 4, 4).Output("y")
        .Weight("s", 0.5, 1.5, 3).Weight("b", -1, 1, 3).Weight("m", -1, 1, 3).Weight("v", 0.5, 2, 3)
        .Node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"]), [1, 3, 4, 4]);

    [Fact]
    public void ConcatOfBranches() => CheckGradient(new GraphBuilder().Input("x", 1, 2, 5, 5).Output("y")
        .Weight("w1", -1, 1, 3, 2, 1, 1).Weight("w2", -1, 1, 2, 2, 3, 3)
        .Node("Conv", ["x", "w1"], ["a"]).Node("Conv", ["x", "w2"], ["c"], Ints("pads", 1, 1, 1, 1))
        .Node("Relu", ["c"], ["r"]).Node("Concat", ["a", "r"], ["y"], Int("axis", 1)), [1, 2, 5, 5]);

    [Fact]
    public void Gemm() => CheckGradient(new GraphBuilder().Input("x", 2, 6).Output("y")
        .Weight("w", -1, 1, 5, 6).Weight("c", -1, 1, 5)
        .Node("Gemm", ["x", "w", "c"], ["y"], Int("transB", 1), Float("alpha", 0.7f), Float("beta", 1.3f)), [2, 6]);

    [Fact]
    public void GoogLeNetInception4cGradientIsFiniteAndNonZero()
    {
        using var scope = NewDisposeScope();
        using var net = OnnxNetwork.Load(Paths.GoogLeNet, input: new InputSpec { Channels = ChannelOrder.Bgr, Scale = 255, Mean = [123.68f, 116.779f, 103.939f] });
        var x = rand(1, 3, 224, 224).requires_grad_(true);
        var act = net.Forward(x, ["inception_4c/output"]).Values.Single();
        // Floor-rounded pools of this graph: 224 -> 112 -> 55 -> 27 -> 13.
        Assert.Equal(new long[] { 1, 512, 13, 13 }, act.shape);
        act.pow(S(2)).sum().backward();
        var grad = x.grad!;
        Assert.True(grad.isfinite().all().item<bool>(), "gradient has non-finite values");
        Assert.True(grad.abs().mean().item<float>() > 1e-6, "gradient is zero");
    }
}
