using Reverie.Imaging;
using Reverie.Jobs;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>The options of <c>reverie invert</c>: a photo, the layers to invert it from, and the optimization.</summary>
public sealed record InvertJobOptions : JobOptions
{
    /// <summary>GoogLeNet's layers from shallow to deep, for <c>--layers all</c>.</summary>
    public static readonly IReadOnlyList<string> GoogLeNetDepth = ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output",
        "inception_4b/output", "inception_4c/output", "inception_4d/output", "inception_4e/output", "inception_5a/output", "inception_5b/output"];

    /// <summary>The photo (an absolute path in recipes).</summary>
    public required string Input { get; init; }
    /// <summary>The layers, each inverted on its own; several make a contact sheet across depth.</summary>
    public required IReadOnlyList<string> Layers { get; init; }
    /// <summary>Side of the (square) photo.</summary>
    public int Size { get; init; } = 224;
    /// <summary>The optimization's settings; its seed is the job's.</summary>
    public InversionOptions Inversion { get; init; } = new();

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Input];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Inversion.Validate();
        if (Size < 32 || Size > 1024) throw new BadInputException($"--size must be from 32 to 1024; got {Size}.");
        if (Layers.Count == 0) throw new BadInputException("Give --layer NAME or --layers all.");
        if (Layers.Count > 64) throw new BadInputException($"At most 64 layers can be inverted at once; got {Layers.Count}.");
    }
}

/// <summary>One layer's reconstruction, measured.</summary>
internal sealed record InversionResult(string Layer, double FeatureLoss, double Psnr, double Ssim);

/// <summary>What an inversion run measured.</summary>
internal sealed record InvertResults(string Model, IReadOnlyList<InversionResult> Layers);

/// <summary><c>reverie invert</c> as a job: reconstructions of a photo from its features at each layer, side by side.</summary>
internal sealed class InvertJob : Job<InvertJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "invert";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(InvertJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        using var photo = ImageIO.Resize(ImageIO.Load(o.Input, o.Size), o.Size, o.Size);
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        foreach (var l in o.Layers) net.ResolveLayer(l);
        o.Prepare(net);
        var options = o.Inversion with { Seed = o.Seed };
        var images = new List<Tensor>();
        var measured = new List<InversionResult>();
        int steps = 0;
        for (int i = 0; i < o.Layers.Count && !c.Cancel.IsCancellationRequested; i++)
        {
            string l = o.Layers[i];
            var progress = c.Steps((long)i * options.Steps, (long)o.Layers.Count * options.Steps, s => $"{l}: step {s.Step}/{s.Steps}");
            var (img, loss) = await Task.Run(() => Inversion.Run(net, l, photo, options, progress, c.Cancel));
            images.Add(img);
            measured.Add(new InversionResult(l, loss, Filters.Psnr(img, photo), Inversion.Ssim(img, photo)));
            steps += options.Steps;
        }
        bool interrupted = c.Cancel.IsCancellationRequested;
        if (images.Count == 0) return new JobResult([], "interrupted before the first layer was done; nothing saved", true);
        var picture = o.Layers.Count == 1 ? images[0]
            : Grid.Make([photo, .. images], Math.Min(6, images.Count + 1), ["photo", .. measured.Select(r => r.Layer)]);
        var results = new InvertResults(net.Name, measured);
        c.Save(picture, c.Output, results, steps, interrupted);
        return new JobResult([c.Output], c.Output, interrupted, results);
    }
}
