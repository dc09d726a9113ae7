using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>Options of a dream toward a target output.</summary>
public sealed record TargetDreamOptions
{
    /// <summary>Gradient steps.</summary>
    public int Steps { get; init; } = 200;
    /// <summary>Step size of plain gradient descent (in 0..1 pixel units per unit of gradient).</summary>
    public double LearningRate { get; init; } = 50;
    /// <summary>Stop early once the target class reaches this probability (the target's own, by default).</summary>
    public double? StopAt { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        Check.Finite(("--lr", LearningRate));
        if (Steps < 1 || Steps > 100_000) throw new BadInputException($"--steps must be from 1 to 100000; got {Steps}.");
        if (LearningRate <= 0) throw new BadInputException($"--lr must be above 0; got {LearningRate}.");
        if (StopAt is { } s && (!(s > 0) || s > 1)) throw new BadInputException($"The stopping probability must be above 0 and at most 1; got {s}.");
    }
}

/// <summary>
/// "Dreaming" toward a target output (the brief's), as a configuration of the engine: raw pixels,
/// no transforms, the objective −|softmax(f(x)) − y|² where y gives the target class probability p
/// and spreads the rest evenly, plain gradient descent, stopping once the class is reached. From
/// noise it shows the extrapolation failure: an image the network is sure about that still looks
/// like noise.
/// </summary>
public static class TargetDream
{
    /// <summary>Runs from <paramref name="start"/> [1,3,H,W] (resized to the network's input) and returns the image, the target's probability and the steps taken.</summary>
    public static (Tensor Image, double Probability, int Steps) Run(INetwork network, int classIndex, double p, Tensor start,
        TargetDreamOptions options, IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        var distance = new TargetDistance(network, classIndex, p);
        var x = Imaging.ImageIO.Resize(start.to(network.Device), network.Input.Height, network.Input.Width).detach().clone();
        double stop = options.StopAt ?? p;
        var result = new ImageOptimizer
        {
            Network = network,
            Objective = distance + 0 * distance.ClassProbability.As("p"),
            Parameterization = new PixelParameterization(x),
            StepRule = new GradientDescentStep(options.LearningRate),
            Schedule = new StopWhen(new FixedSteps(options.Steps), s => s.Terms["p"] >= stop),
        }.Run(progress, cancel);
        double reached;
        using (no_grad()) reached = network.Probabilities(result.Image)[0, classIndex].item<float>();
        return (result.Image, reached, result.Steps);
    }

    /// <summary>Energy of an image's finest detail: the mean square of the image minus its 1-pixel Gaussian blur.</summary>
    public static double HighFrequencyEnergy(Tensor image)
    {
        using var scope = NewDisposeScope();
        return (image - Imaging.Filters.GaussianBlur(image, 1)).pow(S(2)).mean().item<float>();
    }
}
