using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;

namespace Reverie.Style;

/// <summary>
/// The options of <c>reverie stylize train</c>: a style image, a folder of training photos, and the
/// training; <see cref="JobOptions.Model"/> is the loss network (googlenet when null).
/// </summary>
internal sealed record StylizeTrainJobOptions : JobOptions
{
    /// <summary>The file types a training folder is searched for.</summary>
    internal static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".webp", ".bmp"];

    /// <summary>The style image (an absolute path in recipes).</summary>
    public required string Style { get; init; }
    /// <summary>The folder of training photos, searched recursively (an absolute path in recipes).</summary>
    public required string Data { get; init; }
    /// <summary>The training's settings; empty layer lists take the loss network's defaults; its seed is the job's.</summary>
    public FastStyleOptions Training { get; init; } = new();

    /// <summary>The training photos, in a fixed order.</summary>
    public IReadOnlyList<string> Photos() =>
        Directory.EnumerateFiles(Data, "*", SearchOption.AllDirectories)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal).ToList();

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Style, .. Directory.Exists(Data) ? Photos() : []];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (!Directory.Exists(Data)) throw new BadInputException($"Data folder '{BadInputException.Shown(Data)}' does not exist.");
        if (Photos().Count == 0) throw new BadInputException($"Data folder '{BadInputException.Shown(Data)}' has no PNG, JPEG, WebP or BMP images.");
        Training.ValidateNumbers(); // the layers are checked against the loss network once it is open
    }

    /// <summary>
    /// The training's settings on a loss network: Johnson et al.'s layers for VGG names, their
    /// GoogLeNet counterparts otherwise, where none were given; with the job's seed.
    /// </summary>
    public FastStyleOptions On(INetwork net)
    {
        var o = Training with { Seed = Seed };
        if (o.ContentLayers.Count == 0 || o.StyleLayers.Count == 0)
        {
            (string[] content, string[] style) =
                net.HasLayer("relu2_2") ? (new[] { "relu2_2" }, new[] { "relu1_2", "relu2_2", "relu3_3", "relu4_3" }) :
                net.HasLayer("inception_3a/output") ? (new[] { "inception_3a/output" }, new[] { "conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_4a/output" }) :
                throw new BadInputException($"Model '{net.Name}' has no default loss layers; give --content-layers and --style-layers.");
            o = o with { ContentLayers = o.ContentLayers.Count == 0 ? content : o.ContentLayers, StyleLayers = o.StyleLayers.Count == 0 ? style : o.StyleLayers };
        }
        foreach (var l in o.ContentLayers.Concat(o.StyleLayers)) net.ResolveLayer(l);
        return o;
    }
}

/// <summary>What a fast-style training reached: the perceptual loss over the first and last iterations, and every iteration's parts.</summary>
internal sealed record StylizeTrainResults(string LossModel, int Images, string ContentLayers, string StyleLayers, double LossFirst, double LossLast,
    int SkippedSteps, IReadOnlyList<FastStyleLoss> History);

/// <summary><c>reverie stylize train</c> as a job: trains a style network and writes it as ONNX, its recipe and losses beside it.</summary>
internal sealed class StylizeTrainJob : Job<StylizeTrainJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "stylize train";

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(StylizeTrainJobOptions o, JobContext c)
    {
        if (!c.Output.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must end in .onnx; got '{BadInputException.Shown(c.Output)}'.");
        var files = o.Photos();
        using var style = ImageIO.Load(o.Style);
        var images = files.Select(f => ImageIO.Load(f)).ToList();
        try
        {
            using var loss = await c.OpenModelAsync(o.Model ?? "googlenet");
            var options = o.On(loss);
            c.Resolved(o with { Training = options with { Seed = o.Training.Seed } }); // the layers a default chose
            var trainer = new FastStyleTrainer(loss, style, images, options);
            await Task.Run(() => trainer.Run(new Progress(c), c.Cancel));
            var h = trainer.History;
            int k = Math.Max(1, Math.Min(10, h.Count / 4));
            double first = h.Count == 0 ? double.NaN : h.Take(k).Average(l => l.Total), last = h.Count == 0 ? double.NaN : h.TakeLast(k).Average(l => l.Total);
            var results = new StylizeTrainResults(loss.Name, files.Count, string.Join(",", options.ContentLayers), string.Join(",", options.StyleLayers), first, last, trainer.Skipped, h);
            bool interrupted = c.Cancel.IsCancellationRequested;
            c.SaveFile(trainer.Net.ToOnnx(), c.Output, results, h.Count, interrupted);
            string summary = h.Count == 0 ? "interrupted before the first iteration: nothing saved"
                : $"{c.Output} ({h.Count} iterations; perceptual loss {first:G4} over the first {k}, {last:G4} over the last {k})";
            return new JobResult(h.Count == 0 ? [] : [c.Output], summary, interrupted, results);
        }
        finally
        {
            foreach (var i in images) i.Dispose();
        }
    }

    sealed class Progress(JobContext c) : IProgress<(FastStyleLoss Loss, int Iterations)>
    {
        public void Report((FastStyleLoss Loss, int Iterations) s) => c.Report(new JobEvent
        {
            Stage = $"epoch {s.Loss.Epoch}",
            Step = s.Loss.Iteration,
            Total = s.Iterations,
            Value = s.Loss.Total,
            Terms = new Dictionary<string, double> { ["content"] = s.Loss.Content, ["style"] = s.Loss.Style, ["tv"] = s.Loss.Tv },
        });
    }
}
