using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Dreaming;

/// <summary>Options of a DeepDream run. The defaults are those of the original google/deepdream notebook.</summary>
public sealed record DreamOptions
{
    /// <summary>Number of octaves (scales) of the image pyramid.</summary>
    public int Octaves { get; init; } = 4;
    /// <summary>Ratio between successive octaves.</summary>
    public double OctaveScale { get; init; } = 1.4;
    /// <summary>Gradient steps per octave.</summary>
    public int Steps { get; init; } = 10;
    /// <summary>Step size in 0..255 pixel units, as in the notebook (the engine divides by 255).</summary>
    public double StepSize { get; init; } = 1.5;
    /// <summary>Largest random roll in pixels.</summary>
    public int Jitter { get; init; } = 32;
    /// <summary>
    /// Tile size for the gradient: null (the default) tiles at <see cref="AutoTileSize"/> only when
    /// the photo has more than <see cref="AutoTilePixels"/> pixels; 0 never tiles; a size always does.
    /// Tiles bound peak memory by the tile. Measured on BVLC GoogLeNet (2 cores, 1 octave): a 600×400
    /// photo dreams 10–20% faster whole; at 1 MP and above tiles are as fast and halve the memory
    /// (1024²: 0.9 GB tiled, 2.0 GB whole; 2048²: 1.5 GB against 5.1 GB).
    /// </summary>
    public int? Tile { get; init; }
    /// <summary>The tile size chosen when <see cref="Tile"/> is left to the engine.</summary>
    public const int AutoTileSize = 512;
    /// <summary>Images up to this many pixels are dreamed whole when <see cref="Tile"/> is left to the engine.</summary>
    public const long AutoTilePixels = 1024L * 1024;
    /// <summary>The tile size for a photo of <paramref name="height"/> × <paramref name="width"/> (0: whole).</summary>
    public int TileFor(long height, long width) => Tile ?? (height * width > AutoTilePixels ? AutoTileSize : 0);
    /// <summary>Overlap margin around tiles, in pixels.</summary>
    public int TileMargin { get; init; } = 32;
    /// <summary>Gaussian smoothing of the gradient at the first octave (pixels); shrinks linearly over the octaves. 0 = none.</summary>
    public double Smooth { get; init; }
    /// <summary>Keep the original's colours, transfer only luminance.</summary>
    public bool KeepColors { get; init; }
    /// <summary>Seed of the random jitter (a job's recipe holds it once, as the job's seed).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Seed { get; init; }
    /// <summary>Run the network in bfloat16 (the network must have been converted with <c>To(device, BFloat16)</c>); the image stays float32. A job's recipe holds it as the job's precision.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool BFloat16 { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        Check.Finite(("--octave-scale", OctaveScale), ("--step-size", StepSize), ("--smooth", Smooth));
        if (Octaves < 1 || Octaves > 64) throw new BadInputException($"--octaves must be from 1 to 64; got {Octaves}.");
        if (Steps < 1 || Steps > 100_000) throw new BadInputException($"--steps must be from 1 to 100000; got {Steps}.");
        if (OctaveScale <= 1 || OctaveScale > 4) throw new BadInputException($"--octave-scale must be above 1 and at most 4; got {OctaveScale}.");
        if (StepSize <= 0 || StepSize > 255) throw new BadInputException($"--step-size must be above 0 and at most 255; got {StepSize}.");
        if (Jitter < 0) throw new BadInputException($"--jitter must not be negative; got {Jitter}.");
        if (Tile is { } t && t != 0 && (t < 64 || t > 16384)) throw new BadInputException($"--tile must be auto, 0 (no tiles) or from 64 to 16384; got {t}.");
        if (Smooth < 0) throw new BadInputException($"--smooth must not be negative; got {Smooth}.");
    }
}

/// <summary>
/// DeepDream as one configuration of the engine (<see cref="ImageOptimizer"/>): the octave pyramid
/// of the photo with detail carry, random-roll jitter, an objective on the network's layers, the
/// normalized gradient step, a fixed number of steps per octave.
/// </summary>
public sealed class DeepDream(INetwork network, Objective objective, DreamOptions options)
{
    /// <summary>The network.</summary>
    public INetwork Network { get; } = network;
    /// <summary>The objective maximized.</summary>
    public Objective Objective { get; } = objective;
    /// <summary>The options.</summary>
    public DreamOptions Options { get; } = options;
    /// <summary>The jitter transform; its <see cref="RandomRoll.Drawn"/> offsets record the run.</summary>
    internal RandomRoll Jitter { get; init; } = new(options.Jitter);

    /// <summary>
    /// Dreams on an RGB image [1,3,H,W] in 0..1 and returns the result at full size. On
    /// cancellation, returns the image as far as it got (brought to full size).
    /// </summary>
    public Tensor Run(Tensor image, IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default) =>
        RunFull(image, progress, cancel).Image;

    /// <summary>As <see cref="Run"/>, with the steps taken and whether it was cancelled.</summary>
    public OptimizationResult RunFull(Tensor image, IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default)
    {
        Options.Validate();
        var original = image.to(Network.Device).detach();
        var optimizer = new ImageOptimizer
        {
            Network = Network,
            Objective = Objective,
            Parameterization = new OctavePyramid(original, Options.Octaves, Options.OctaveScale),
            Transform = Jitter,
            StepRule = new NormalizedGradientStep(Options.StepSize / 255.0),
            Schedule = new FixedSteps(Options.Steps),
            Random = new Random(Options.Seed),
            Tile = Options.TileFor(original.shape[2], original.shape[3]),
            TileMargin = Options.TileMargin,
            ComputeType = Options.BFloat16 ? ScalarType.BFloat16 : null,
            GradientFilter = Options.Smooth > 0 ? (g, stage, stages) => Filters.GaussianBlur(g, Options.Smooth * (stages - stage) / stages) : null,
        };
        var result = optimizer.Run(progress, cancel);
        if (!Options.KeepColors) return result;
        using (no_grad()) return result with { Image = Filters.TransferLuminance(result.Image, original) };
    }

}
