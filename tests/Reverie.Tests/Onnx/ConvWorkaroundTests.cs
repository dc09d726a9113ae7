using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

/// <summary>
/// Guards the work-around for libtorch 2.10's faulty CPU convolution (5x5+ kernels, input channels
/// not a multiple of 16): an imported Conv must match a float64 reference on every repetition.
/// </summary>
public class ConvWorkaroundTests
{
    [Theory]
    [InlineData(24, 64, 5)]
    [InlineData(20, 16, 7)]
    [InlineData(40, 16, 5)]
    [InlineData(3, 64, 7)]
    [InlineData(24, 64, 3, true)]
    [InlineData(40, 16, 5, true)]
    public void ConvMatchesFloat64Reference(int cin, int cout, int k, bool bf16 = false)
    {
        var dtype = bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
        double tolerance = bf16 ? 0.05 : 1e-3;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(0);
        var x = rand(1, cin, 13, 13).to(dtype);
        var w = (randn(cout, cin, k, k) * S(0.1)).to(dtype);
        var b = randn(cout).to(dtype);
        var reference = nn.functional.conv2d(x.to(ScalarType.Float64), w.to(ScalarType.Float64), b.to(ScalarType.Float64), [1, 1], [k / 2, k / 2], [1, 1], 1);
        for (int rep = 0; rep < 20; rep++)
        {
            // Churn the allocator so that uninitialized memory holds NaNs, as it does inside a real graph.
            using (full(new long[] { 1 + rep % 7, cin + rep % 5, 13, 13 + rep % 3 }, S(float.NaN), dtype: dtype)) { }
            var (xi, wi) = Reverie.Models.Onnx.OnnxOps.WorkAroundWideKernelBug(x, w, 1);
            var y = nn.functional.conv2d(xi, wi, b, [1, 1], [k / 2, k / 2], [1, 1], 1);
            double err = ((y.to(ScalarType.Float64) - reference).abs().max() / reference.abs().max()).item<double>();
            Assert.True(err < tolerance, $"repetition {rep}: max relative error {err}");
        }
    }
}
