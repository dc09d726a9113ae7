using Reverie.Models;
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
        if (Steps < 1) throw new BadInputException($"--steps must be at least 1; got {Steps}.");
        if (LearningRate <= 0) throw new BadInputException($"--lr must be above 0; got {LearningRate}.");
    }
}

/// <summary>
/// "Dreaming" toward a target output (the brief's): plain gradient descent on the pixels to
/// minimize |softmax(f(x)) − y|², where y gives the target class probability p and spreads the
/// rest evenly. From noise, with raw pixels and no transforms, it shows the extrapolation failure:
/// an image the network is sure about that still looks like noise.
/// </summary>
public static class TargetDream
{
    /// <summary>Runs from <paramref name="start"/> [1,3,H,W] (resized to the network's input) and returns the image and the target's probability.</summary>
    public static (Tensor Image, double Probability, int Steps) Run(INetwork network, int classIndex, double p, Tensor start,
        TargetDreamOptions options, IProgress<(int Step, double Probability)>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        if (p <= 0 || p > 1) throw new BadInputException($"The target probability must be above 0 and at most 1; got {p}.");
        var x = Imaging.ImageIO.Resize(start.to(network.Device), network.Input.Height, network.Input.Width).detach().clone();
        using var probe = no_grad();
        long k = network.Probabilities(x).shape[1];
        probe.Dispose();
        var target = full(new long[] { 1, k }, (1 - p) / Math.Max(1, k - 1), device: x.device);
        target[0, classIndex] = tensor(p);
        double reached = 0;
        int step = 0;
        double stop = options.StopAt ?? p;
        for (; step < options.Steps && !cancel.IsCancellationRequested; step++)
        {
            using var scope = NewDisposeScope();
            var xv = x.requires_grad_(true);
            var probs = network.Probabilities(xv);
            reached = probs[0, classIndex].item<float>();
            progress?.Report((step, reached));
            if (reached >= stop) break;
            (probs - target).pow(2).sum().backward();
            using (no_grad())
            {
                x = (xv - xv.grad! * options.LearningRate).clamp(0, 1).detach().MoveToOuterDisposeScope();
            }
        }
        using (no_grad()) reached = network.Probabilities(x)[0, classIndex].item<float>();
        return (x, reached, step);
    }

    /// <summary>Energy of an image's finest detail: the mean square of the image minus its 1-pixel Gaussian blur.</summary>
    public static double HighFrequencyEnergy(Tensor image)
    {
        using var scope = NewDisposeScope();
        return (image - Imaging.Filters.GaussianBlur(image, 1)).pow(2).mean().item<float>();
    }
}
