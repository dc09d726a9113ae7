using static TorchSharp.torch;

namespace Reverie.Explaining;

/// <summary>
/// The measures of Adebayo et al. 2018's sanity checks: a map that explains the model must change
/// when the model's weights are randomized (<see cref="Models.Onnx.OnnxGraph.RandomizeTop"/>);
/// how much it changed is the Spearman rank correlation between the maps before and after.
/// </summary>
internal static class SanityChecks
{
    /// <summary>Spearman's rank correlation of two maps of the same size (ties ranked by position).</summary>
    public static double Spearman(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        static Tensor Ranks(Tensor t)
        {
            var flat = t.detach().flatten().to(ScalarType.Float64).cpu();
            var order = flat.argsort();
            return empty_like(flat).scatter_(0, order, arange(S(flat.shape[0]), dtype: ScalarType.Float64));
        }
        var x = Ranks(a);
        var y = Ranks(b);
        x = x - x.mean();
        y = y - y.mean();
        return ((x * y).sum() / (x.norm() * y.norm())).item<double>();
    }
}
