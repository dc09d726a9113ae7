using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>How feature-visualization images are parameterized.</summary>
public enum ImageParam
{
    /// <summary>Lucid's decorrelated Fourier parameterization (natural-looking images).</summary>
    Fft,
    /// <summary>Raw pixels.</summary>
    Pixel,
}

/// <summary>Options of a feature visualization; defaults follow Lucid.</summary>
public sealed record VisualizeOptions
{
    /// <summary>Image side in pixels.</summary>
    public int Size { get; init; } = 224;
    /// <summary>Optimization steps.</summary>
    public int Steps { get; init; } = 512;
    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 0.05;
    /// <summary>Images optimized together.</summary>
    public int Batch { get; init; } = 1;
    /// <summary>The parameterization.</summary>
    public ImageParam Param { get; init; } = ImageParam.Fft;
    /// <summary>Apply Lucid's standard transforms (pad, jitter, scale, rotate, jitter).</summary>
    public bool Transforms { get; init; } = true;
    /// <summary>The step rule, at <see cref="LearningRate"/> (Adam, as Lucid, by default).</summary>
    public StepKind Step { get; init; } = StepKind.Adam;
    /// <summary>Seed of the initial image and the transforms (a job's recipe holds it once, as the job's seed).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Seed { get; init; }
    /// <summary>
    /// Run the network in bfloat16 (it must have been converted with <c>To(device, BFloat16)</c>); the
    /// parameters, the image and the objective stay float32. A job's recipe holds it as the job's precision.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool BFloat16 { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        Check.Finite(("--lr", LearningRate));
        if (Size < 32 || Size > 2048) throw new BadInputException($"--size must be from 32 to 2048; got {Size}.");
        if (Steps < 1 || Steps > 100_000) throw new BadInputException($"--steps must be from 1 to 100000; got {Steps}.");
        if (LearningRate <= 0 || LearningRate > 10) throw new BadInputException($"--lr must be above 0 and at most 10; got {LearningRate}.");
        if (Batch < 1 || Batch > 256) throw new BadInputException($"--batch must be from 1 to 256; got {Batch}.");
    }
}

/// <summary>
/// Feature visualization as one configuration of the engine (<see cref="ImageOptimizer"/>): an
/// image parameterization (Fourier or pixels), Lucid's transforms, an objective, Adam, a fixed
/// number of steps; ReLU gradients leak for the first <see cref="RedirectSteps"/> steps.
/// </summary>
public sealed class FeatureVisualizer(INetwork network, Objective objective, VisualizeOptions options)
{
    /// <summary>The network.</summary>
    public INetwork Network { get; } = network;
    /// <summary>The objective maximized.</summary>
    public Objective Objective { get; } = objective;
    /// <summary>The options.</summary>
    public VisualizeOptions Options { get; } = options;

    /// <summary>Steps at the start during which ReLU gradients leak (Lucid redirects them for its first 16).</summary>
    public int RedirectSteps { get; init; } = 16;

    /// <summary>A step rule of the caller's, instead of the options' named one.</summary>
    internal IStepRule? StepRule { get; init; }

    /// <summary>Optimizes and returns the images [N,3,S,S] in 0..1.</summary>
    public Tensor Run(IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default) => RunFull(progress, cancel).Image;

    /// <summary>As <see cref="Run"/>, with the steps taken and whether it was cancelled.</summary>
    public OptimizationResult RunFull(IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default)
    {
        Options.Validate();
        var generator = new Generator((ulong)Options.Seed);
        var device = Network.Device;
        IParameterization param = Options.Param == ImageParam.Fft
            ? new FourierParameterization(Options.Batch, Options.Size, Options.Size, generator, device)
            : PixelParameterization.Noise(Options.Batch, Options.Size, Options.Size, generator, device);
        return new ImageOptimizer
        {
            Network = Network,
            Objective = Objective,
            Parameterization = param,
            Transform = Options.Transforms ? Compose.LucidStandard() : null,
            StepRule = StepRule ?? StepRules.Create(Options.Step, Options.LearningRate),
            Schedule = new FixedSteps(Options.Steps),
            Random = new Random(Options.Seed),
            ComputeType = Options.BFloat16 ? ScalarType.BFloat16 : null,
            LeakyReluSteps = RedirectSteps,
        }.Run(progress, cancel);
    }
}
