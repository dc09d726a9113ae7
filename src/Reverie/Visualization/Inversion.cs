using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
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
    /// <summary>The step rule at <see cref="LearningRate"/> (Adam by default; <c>lbfgs</c> wants a rate of 1).</summary>
    public StepKind Step { get; init; } = StepKind.Adam;
    /// <summary>Seed of the starting noise (a job's recipe holds it once, as the job's seed).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Seed { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        Check.Finite(("--lr", LearningRate), ("--alpha-weight", AlphaWeight), ("--tv-weight", TvWeight));
        if (Steps < 1 || Steps > 100_000) throw new BadInputException($"--steps must be from 1 to 100000; got {Steps}.");
        if (!(LearningRate > 0) || LearningRate > 100) throw new BadInputException($"--lr must be above 0 and at most 100; got {LearningRate}.");
        if (AlphaWeight < 0 || TvWeight < 0) throw new BadInputException("--alpha-weight and --tv-weight must not be negative.");
    }
}

/// <summary>
/// Reconstructs an image from its features at one layer, from noise, as a configuration of the
/// engine: pixels, the objective −(‖Φ(x)−Φ0‖²/‖Φ0‖² + λα·α-norm + λTV·TV^β) with α = 6 and β = 2,
/// Adam with a cosine-decayed rate. As in the paper, the regularizers are normalized by the image
/// size and the pixel range: with x centred on 0.5 and B = 0.5, λα = 1/(H·W·B^α) and
/// λTV = 1/(H·W·V^β) with V = B/6.5.
/// </summary>
public static class Inversion
{
    const double B = 0.5, V = B / 6.5;

    /// <summary>The inversion's objective for a target captured at <paramref name="tap"/>: the feature distance labelled "features", minus the weighted regularizers.</summary>
    public static Objective Objective(string tap, Tensor target, string display, InversionOptions options) =>
        -1.0 * new FeatureDistance(tap, target, display).As("features")
        - options.AlphaWeight * new AlphaNorm(6, B)
        - options.TvWeight * TotalVariation.Normalized(V);

    /// <summary>Returns the reconstruction [1,3,H,W] and the relative feature loss reached.</summary>
    public static (Tensor Image, double FeatureLoss) Run(INetwork network, string layer, Tensor photo, InversionOptions options,
        IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        string tap = network.ResolveLayer(layer);
        var target = Capture.Features(network, photo, [tap])[tap];
        var start = S(0.5) + (rand(photo.shape, generator: new Generator((ulong)options.Seed), device: network.Device) - S(0.5)) * S(0.2);
        var distance = new FeatureDistance(tap, target, layer);
        var result = new ImageOptimizer
        {
            Network = network,
            Objective = Objective(tap, target, layer, options),
            Parameterization = new PixelParameterization(start),
            StepRule = StepRules.Create(options.Step, options.LearningRate),
            Schedule = new CosineDecay(options.Steps),
        }.Run(progress, cancel);
        using (no_grad())
        {
            var acts = network.Forward(result.Image, [tap]);
            return (result.Image, distance.Evaluate(acts).item<float>());
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
        var map = (S(2) * mx * my + S(c1)) * (S(2) * sxy + S(c2)) / ((mx * mx + my * my + S(c1)) * (sxx + syy + S(c2)));
        return map.mean().item<double>();
    }
}
