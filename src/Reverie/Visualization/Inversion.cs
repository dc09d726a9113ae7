using Reverie.Imaging;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>Options of a representation inversion (Mahendran and Vedaldi, "Understanding Deep Image Representations by Inverting Them").</summary>
public sealed record InversionOptions
{
    /// <summary>Adam steps.</summary>
    public int Steps { get; init; } = 300;
    /// <summary>Initial learning rate, decayed by cosine to a tenth.</summary>
    public double LearningRate { get; init; } = 0.05;
    /// <summary>Weight of the α-norm term (α = 6).</summary>
    public double AlphaWeight { get; init; } = 1;
    /// <summary>Weight of the total-variation term (β = 2).</summary>
    public double TvWeight { get; init; } = 1;
    /// <summary>Seed of the starting noise.</summary>
    public int Seed { get; init; }
}

/// <summary>
/// Reconstructs an image from its features at one layer, from noise, by minimizing
/// ‖Φ(x)−Φ0‖²/‖Φ0‖² + λα·‖x‖α^α + λTV·TV^β with α = 6 and β = 2. As in the paper, the
/// regularizers are normalized by the image size and the pixel range: with x centred on 0.5 and
/// B = 0.5, λα = 1/(H·W·B^α) and λTV = 1/(H·W·V^β) with V = B/6.5.
/// </summary>
public static class Inversion
{
    const double Alpha = 6, B = 0.5, V = B / 6.5;

    /// <summary>Returns the reconstruction [1,3,H,W] and the relative feature loss reached.</summary>
    public static (Tensor Image, double FeatureLoss) Run(INetwork network, string layer, Tensor photo, InversionOptions options,
        IProgress<(int Step, double Loss)>? progress = null, CancellationToken cancel = default)
    {
        if (options.Steps < 1) throw new BadInputException($"--steps must be at least 1; got {options.Steps}.");
        string tap = network.ResolveLayer(layer);
        Tensor target;
        using (no_grad()) target = network.Forward(photo.to(network.Device), [tap])[tap].detach().clone();
        double targetNorm = target.pow(2).sum().item<float>() + 1e-12;
        var start = 0.5 + (rand(photo.shape, generator: new Generator((ulong)options.Seed), device: network.Device) - 0.5) * 0.2;
        var x = new TorchSharp.Modules.Parameter(start);
        using var adam = optim.Adam([x], options.LearningRate);
        double featureLoss = double.NaN;
        for (int step = 0; step < options.Steps && !cancel.IsCancellationRequested; step++)
        {
            using var scope = NewDisposeScope();
            double lr = options.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * step / options.Steps)));
            foreach (var g in adam.ParamGroups) g.LearningRate = lr;
            adam.zero_grad();
            var phi = network.Forward(x, [tap])[tap];
            var feature = (phi - target).pow(2).sum() / targetNorm;
            var centred = x - 0.5;
            var alphaTerm = (centred.abs() / B).pow(Alpha).mean();
            var dx = x.narrow(3, 1, x.shape[3] - 1) - x.narrow(3, 0, x.shape[3] - 1);
            var dy = x.narrow(2, 1, x.shape[2] - 1) - x.narrow(2, 0, x.shape[2] - 1);
            var tv = (dx.narrow(2, 0, dx.shape[2] - 1).pow(2) + dy.narrow(3, 0, dy.shape[3] - 1).pow(2)).mean() / (V * V);
            var loss = feature + alphaTerm * options.AlphaWeight + tv * options.TvWeight;
            loss.backward();
            adam.step();
            using (no_grad()) x.clamp_(0, 1);
            featureLoss = feature.item<float>();
            progress?.Report((step + 1, featureLoss));
        }
        using (no_grad())
        {
            var phi = network.Forward(x, [tap])[tap];
            featureLoss = ((phi - target).pow(2).sum() / targetNorm).item<float>();
            return (x.detach().clone(), featureLoss);
        }
    }

    /// <summary>Structural similarity (Wang et al. 2004) of two RGB images in 0..1: Gaussian window σ 1.5, C1 = 0.01², C2 = 0.03², averaged over channels and pixels.</summary>
    public static double Ssim(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var x = a.to(ScalarType.Float64); var y = b.to(ScalarType.Float64);
        Tensor Blur(Tensor t) => Filters.GaussianBlur(t, 1.5);
        var mx = Blur(x); var my = Blur(y);
        var sxx = Blur(x * x) - mx * mx; var syy = Blur(y * y) - my * my; var sxy = Blur(x * y) - mx * my;
        const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
        var map = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
        return map.mean().item<double>();
    }
}
