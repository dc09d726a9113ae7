using Reverie.Imaging;
using Reverie.Models;
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
    /// <summary>Seed of the initial image and the transforms.</summary>
    public int Seed { get; init; }
    /// <summary>
    /// Run the network in bfloat16 (it must have been converted with <c>To(device, BFloat16)</c>); the
    /// parameters, the image and the objective stay float32.
    /// </summary>
    public bool BFloat16 { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        if (Size < 32 || Size > 2048) throw new BadInputException($"--size must be from 32 to 2048; got {Size}.");
        if (Steps < 1) throw new BadInputException($"--steps must be at least 1; got {Steps}.");
        if (LearningRate <= 0 || LearningRate > 10) throw new BadInputException($"--lr must be above 0 and at most 10; got {LearningRate}.");
        if (Batch < 1 || Batch > 256) throw new BadInputException($"--batch must be from 1 to 256; got {Batch}.");
    }
}

/// <summary>
/// Feature visualization as one configuration of the engine: an image parameterization (Fourier or
/// pixels), transforms, an objective, Adam as the step rule, a fixed number of steps.
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

    bool NeedsClassifier => Flatten(Objective).Any(o => o is ClassObjective);

    static IEnumerable<Objective> Flatten(Objective o) => o is Objective.Sum s ? s.Terms.SelectMany(t => Flatten(t.Term)) : [o];

    /// <summary>Runs the network, image by image when the classifier is involved (classic graphs fix the batch to 1 and the size to the input's).</summary>
    public IReadOnlyDictionary<string, Tensor> Forward(Tensor images)
    {
        if (Options.BFloat16 && images.dtype != ScalarType.BFloat16)
            return Forward(images.to(ScalarType.BFloat16)).ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32));
        var layers = Objective.Layers.ToList();
        if (!NeedsClassifier) return Network.Forward(images, layers);
        var x = images.shape[2] == Network.Input.Height && images.shape[3] == Network.Input.Width
            ? images : nn.functional.interpolate(images, new long[] { Network.Input.Height, Network.Input.Width }, mode: InterpolationMode.Bilinear, align_corners: false);
        if (x.shape[0] == 1) return Network.Forward(x, layers);
        var parts = Enumerable.Range(0, (int)x.shape[0]).Select(i => Network.Forward(x.narrow(0, i, 1), layers)).ToList();
        return layers.Distinct().ToDictionary(l => l, l => cat(parts.Select(p => p[l]).ToArray(), 0));
    }

    /// <summary>Optimizes and returns the images [N,3,S,S] in 0..1.</summary>
    public Tensor Run(IProgress<(int Step, double Value)>? progress = null, CancellationToken cancel = default)
    {
        Options.Validate();
        var generator = new Generator((ulong)Options.Seed);
        var device = Network.Device;
        IParameterization param = Options.Param == ImageParam.Fft
            ? new FourierParameterization(Options.Batch, Options.Size, Options.Size, generator, device)
            : PixelParameterization.Noise(Options.Batch, Options.Size, Options.Size, generator, device);
        ITransform? transform = Options.Transforms ? Compose.LucidStandard() : null;
        var rng = new Random(Options.Seed);
        using var adam = optim.Adam(param.Parameters.Cast<TorchSharp.Modules.Parameter>().ToList(), Options.LearningRate);
        for (int step = 0; step < Options.Steps && !cancel.IsCancellationRequested; step++)
        {
            using var scope = NewDisposeScope();
            adam.zero_grad();
            var image = param.Image();
            var x = transform?.Apply(image, rng) ?? image;
            // Early on, let gradients leak through ReLUs that are off, so that a channel that is dead
            // on the gray start image can still be reached.
            using var leak = step < RedirectSteps ? Models.Onnx.OnnxGraph.LeakyReluGradients(0.1) : null;
            var value = Objective.Evaluate(Forward(x));
            (-value).backward();
            adam.step();
            param.AfterStep();
            progress?.Report((step + 1, value.to(ScalarType.Float64).item<double>()));
        }
        using (no_grad()) return param.Image().detach().clone();
    }
}
