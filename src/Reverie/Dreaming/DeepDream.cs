using Reverie.Imaging;
using Reverie.Models;
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
    /// <summary>Tile size for the gradient; 0 disables tiling.</summary>
    public int Tile { get; init; } = 512;
    /// <summary>Overlap margin around tiles, in pixels.</summary>
    public int TileMargin { get; init; } = 32;
    /// <summary>Gaussian smoothing of the gradient at the first octave (pixels); shrinks linearly over the octaves. 0 = none.</summary>
    public double Smooth { get; init; }
    /// <summary>Keep the original's colours, transfer only luminance.</summary>
    public bool KeepColors { get; init; }
    /// <summary>Seed of the random jitter.</summary>
    public int Seed { get; init; }
    /// <summary>Run the network in bfloat16 (the network must have been converted with <c>To(device, BFloat16)</c>); the image stays float32.</summary>
    public bool BFloat16 { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        if (Octaves < 1) throw new BadInputException($"--octaves must be at least 1; got {Octaves}.");
        if (Steps < 1) throw new BadInputException($"--steps must be at least 1; got {Steps}.");
        if (OctaveScale <= 1 || OctaveScale > 4) throw new BadInputException($"--octave-scale must be above 1 and at most 4; got {OctaveScale}.");
        if (StepSize <= 0 || StepSize > 255) throw new BadInputException($"--step-size must be above 0 and at most 255; got {StepSize}.");
        if (Jitter < 0) throw new BadInputException($"--jitter must not be negative; got {Jitter}.");
        if (Tile != 0 && Tile < 64) throw new BadInputException($"--tile must be 0 (no tiles) or at least 64; got {Tile}.");
        if (Smooth < 0) throw new BadInputException($"--smooth must not be negative; got {Smooth}.");
    }
}

/// <summary>Where a dream is: octave and step, for progress displays.</summary>
public readonly record struct DreamProgress(int Octave, int Octaves, int Step, int Steps, double Objective)
{
    /// <summary>Steps done out of all steps.</summary>
    public double Fraction => ((double)Octave * Steps + Step) / ((double)Octaves * Steps);
}

/// <summary>
/// DeepDream as one configuration of the optimization engine: pixel parameterization of the
/// photo, random-roll jitter, an objective on the network's layers, the normalized gradient step,
/// and an octave schedule in which each octave carries its detail (dreamed minus base) up to the
/// next scale.
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
    public RandomRoll Jitter { get; init; } = new(options.Jitter);

    /// <summary>Image sizes of the pyramid, smallest first (each octave a rounded 1/scale of the one above).</summary>
    public static List<(int H, int W)> PyramidSizes(int h, int w, int octaves, double scale)
    {
        var sizes = new List<(int, int)> { (h, w) };
        for (int i = 1; i < octaves; i++)
        {
            var (ph, pw) = sizes[^1];
            sizes.Add((Math.Max(1, (int)Math.Floor(ph / scale + 0.5)), Math.Max(1, (int)Math.Floor(pw / scale + 0.5))));
        }
        sizes.Reverse();
        return sizes;
    }

    /// <summary>
    /// Dreams on an RGB image [1,3,H,W] in 0..1 and returns the result at full size. On
    /// cancellation, returns the image as far as it got (brought to full size).
    /// </summary>
    public Tensor Run(Tensor image, IProgress<DreamProgress>? progress = null, CancellationToken cancel = default, Action<int, Tensor>? octaveDone = null)
    {
        Options.Validate();
        var rng = new Random(Options.Seed);
        var device = Network.Device;
        var original = image.to(device).detach();
        var sizes = PyramidSizes((int)original.shape[2], (int)original.shape[3], Options.Octaves, Options.OctaveScale);
        // The pyramid, as in the notebook: each octave is the previous one shrunk (antialiased).
        var bases = new List<Tensor> { original };
        for (int i = sizes.Count - 2; i >= 0; i--) bases.Insert(0, ImageIO.Resize(bases[0], sizes[i].H, sizes[i].W));

        var evaluator = new GradientEvaluator(Network, Objective)
        {
            Tile = Options.Tile, Margin = Options.TileMargin, ComputeType = Options.BFloat16 ? ScalarType.BFloat16 : null,
        };
        var step = new NormalizedGradientStep(Options.StepSize / 255.0);
        Tensor? detail = null;
        Tensor current = original;
        for (int o = 0; o < bases.Count; o++)
        {
            var b = bases[o];
            using (no_grad())
            {
                var previous = detail;
                detail = detail is null ? zeros_like(b) : ImageIO.Resize(detail, (int)b.shape[2], (int)b.shape[3]);
                previous?.Dispose();
                current = (b + detail).clamp_(0, 1);
            }
            double sigma = Options.Smooth * (bases.Count - o) / bases.Count;
            // The image is kept in rolled coordinates: each step rolls it from the previous offset to
            // the new one, so the network sees exactly roll(image, offset) as in the notebook, without
            // a rolled copy and an un-rolled gradient per step. Step and clipping are per pixel, so
            // they commute with the roll; the octave ends by rolling back.
            int sx = 0, sy = 0;
            for (int s = 0; s < Options.Steps; s++)
            {
                if (cancel.IsCancellationRequested) return Finish(Unroll(current, sx, sy), original, o, bases);
                var (dx, dy) = Jitter.Next(rng);
                using (no_grad())
                {
                    var rolled = RandomRoll.Roll(current, dx - sx, dy - sy);
                    current.Dispose();
                    current = rolled;
                }
                (sx, sy) = (dx, dy);
                var (value, g) = evaluator.Evaluate(current);
                using (no_grad())
                {
                    if (sigma > 0)
                    {
                        using var scope = NewDisposeScope();
                        var smoothed = RandomRoll.Roll(Filters.GaussianBlur(RandomRoll.Roll(g, -dx, -dy), sigma), dx, dy).MoveToOuterDisposeScope();
                        g.Dispose();
                        g = smoothed;
                    }
                    step.Step(current, g);
                    current.clamp_(0, 1);
                    g.Dispose();
                }
                progress?.Report(new DreamProgress(o, bases.Count, s + 1, Options.Steps, value));
            }
            current = Unroll(current, sx, sy);
            using (no_grad())
            {
                detail.Dispose();
                detail = current - b;
            }
            if (octaveDone is not null && o < bases.Count - 1) octaveDone(o, Finish(current, original, o, bases));
        }
        return Finish(current, original, bases.Count - 1, bases);
    }

    static Tensor Unroll(Tensor current, int sx, int sy)
    {
        if (sx == 0 && sy == 0) return current;
        using var noGrad = no_grad();
        var back = RandomRoll.Roll(current, -sx, -sy);
        current.Dispose();
        return back;
    }

    Tensor Finish(Tensor current, Tensor original, int octave, List<Tensor> bases)
    {
        using var noGrad = no_grad();
        var full = current.shape[2] == original.shape[2] && current.shape[3] == original.shape[3]
            ? current.alias()
            : (original + ImageIO.Resize(current - bases[octave], (int)original.shape[2], (int)original.shape[3])).clamp(0, 1);
        return Options.KeepColors ? Filters.TransferLuminance(full, original) : full;
    }

    /// <summary>Records a guide image's activations at a layer and returns the guided objective.</summary>
    public static GuideObjective Guide(INetwork network, string layer, Tensor guideImage, int maxSide = 224)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double f = Math.Min(1.0, (double)maxSide / Math.Max(guideImage.shape[2], guideImage.shape[3]));
        var g = f < 1 ? ImageIO.Resize(guideImage, (int)Math.Round(guideImage.shape[2] * f), (int)Math.Round(guideImage.shape[3] * f)) : guideImage;
        var acts = network.Forward(g.to(network.Device), [layer]);
        var obj = new GuideObjective(layer, acts[layer]);
        obj.GuideFeatures.MoveToOuterDisposeScope();
        return obj;
    }
}
