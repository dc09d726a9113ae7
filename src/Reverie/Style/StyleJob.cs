using System.Globalization;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Video;
using static TorchSharp.torch;

namespace Reverie.Style;

/// <summary>A style image and its weight in the blend.</summary>
public sealed record StyleImage(string Path, double Weight = 1);

/// <summary>The options of <c>reverie style</c>: a content photo, style images with weights, and the optimization.</summary>
public sealed record StyleJobOptions : JobOptions
{
    /// <summary>The content photo (an absolute path in recipes).</summary>
    public required string Content { get; init; }
    /// <summary>The style images; several blend their Gram matrices by weight.</summary>
    public required IReadOnlyList<StyleImage> Styles { get; init; }
    /// <summary>Also save the image every N iterations (OUT-N.png); 0 never.</summary>
    public int SaveEvery { get; init; }
    /// <summary>The transfer's settings; empty layer lists take the network's defaults; its seed is the job's.</summary>
    public StyleOptions Style { get; init; } = new();
    /// <summary>For a video content: the optical flow and blend that carry each styled frame into the next.</summary>
    public VideoOptions Video { get; init; } = new();

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Content, .. Styles.Select(s => s.Path)];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Style.ValidateNumbers();
        if (Styles.Count is 0 or > 16) throw new BadInputException($"Give 1 to 16 style images; got {Styles.Count}.");
        foreach (var s in Styles) if (!(s.Weight > 0) || !double.IsFinite(s.Weight)) throw new BadInputException($"Style weight in '{BadInputException.Shown(s.Path)}' must be above 0.");
        if (SaveEvery < 0) throw new BadInputException($"--save-every must not be negative; got {SaveEvery}.");
        Video.Validate();
    }

    /// <inheritdoc/>
    internal override MemoryEstimate? EstimateMemory() => MemoryEstimate.Optimized(Model ?? "googlenet", 1, Style.Size, "a styled image");

    /// <summary>The style settings on a network: its default layers where none were given, checked, with the job's seed.</summary>
    public StyleOptions On(Models.INetwork net)
    {
        var o = Style.WithDefaultLayers(net) with { Seed = Seed };
        foreach (var l in o.ContentLayers.Concat(o.StyleLayers)) net.ResolveLayer(l);
        o.Validate();
        return o;
    }
}

/// <summary>The losses a transfer ended with.</summary>
/// <remarks>
/// <c>GramRatio</c> and <c>ContentDistance</c> are <see cref="StyleStrength"/> (the first style image, at 256 px):
/// how styled the result is (1 unstyled, 0 the style's texture) and how far its features moved from the content's.
/// </remarks>
internal sealed record StyleResults(string Model, string ContentLayers, string StyleLayers, double Content, double Style, double Tv, double Total, int Iterations, double FirstStyle,
    string Scale = "", double GramRatio = double.NaN, double ContentDistance = double.NaN);

/// <summary><c>reverie style</c> as a job: Gatys et al.'s transfer, with snapshots every N iterations.</summary>
internal sealed class StyleJob : Job<StyleJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "style";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <summary>The longer side style images are scaled to: decoding needs no more.</summary>
    internal static int StyleSide(StyleOptions s) => (int)Math.Ceiling(s.Size * s.StyleScale);

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(StyleJobOptions o, JobContext c)
    {
        if (Ffmpeg.IsVideo(o.Content)) return await RunVideoAsync(o, c);
        c.CheckImageOutput();
        using var content = ImageIO.Load(o.Content, o.Style.Size);
        var styles = o.Styles.Select(s => (ImageIO.Load(s.Path, StyleSide(o.Style)), s.Weight)).ToList();
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        o.Prepare(net);
        var options = o.On(net);
        var transfer = new StyleTransfer(net, content, styles, options);
        var progress = c.Steps(0, options.Steps, s => $"iteration {s.Step}/{s.Steps}");
        var r = await Task.Run(() => transfer.RunFull(progress, c.Cancel, o.SaveEvery, (step, image) => c.SaveExtra(image, c.Beside($"-{step}"))));
        var final = transfer.History.LastOrDefault();
        var strength = final is null ? null : StyleStrength.Measure(net, r.Image, content, styles[0].Item1, options);
        var results = final is null ? null : new StyleResults(net.Name, string.Join(",", options.ContentLayers), string.Join(",", options.StyleLayers),
            final.Content, final.Style, final.Tv, final.Total, final.Step, transfer.History[0].Style,
            options.ScaleOn(net) == StyleLossScale.Normalized ? "normalized" : "neural-style", Math.Round(strength!.GramRatio, 4), Math.Round(strength.ContentDistance, 4));
        c.Save(r.Image, c.Output, results, r.Steps, r.Cancelled);
        string summary = final is null ? c.Output
            : $"{c.Output} (content {final.Content:G4}, style {final.Style:G4}, tv {final.Tv:G4} after {final.Step} iterations; style loss {transfer.History[0].Style:G4} at the first; " +
              $"style strength: Gram distance ratio {strength!.GramRatio:0.000} at {strength.StyleLayer}, content distance {strength.ContentDistance:0.000} at {strength.ContentLayer})";
        return new JobResult([c.Output], summary, r.Cancelled, results);
    }

    /// <summary>
    /// A video styled frame by frame (Ruder et al. 2016's way): each frame's optimization starts from
    /// the frame blended with the previous styled frame warped along the optical flow, and its result
    /// is blended with that warped frame again (<see cref="CoherentVideo"/>). Frames are done at
    /// <see cref="StyleOptions.Size"/>; every frame runs the whole <see cref="StyleOptions.Steps"/>.
    /// </summary>
    static async Task<JobResult> RunVideoAsync(StyleJobOptions o, JobContext c)
    {
        CoherentVideo.CheckOutput(c);
        var info = Ffmpeg.Probe(o.Content);
        var styles = o.Styles.Select(s => (ImageIO.Load(s.Path, StyleSide(o.Style)), s.Weight)).ToList();
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        o.Prepare(net);
        var options = o.On(net);
        long totalFrames = Math.Max(1, info.Frames);
        int steps = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var run = await Task.Run(() => CoherentVideo.Run(o.Content, info, o.Video, options.Size, c, (t, frame, link) =>
        {
            var transfer = new StyleTransfer(net, frame, styles, options);
            var progress = c.Steps(t * (long)options.Steps, totalFrames * options.Steps, s => $"frame {t + 1}/{totalFrames} iteration {s.Step}/{s.Steps}");
            var start = link is null ? null : Optimization.Capture.ScaleTo(link.Blend(frame), options.Size).to(transfer.Content.device);
            var r = transfer.RunFull(progress, c.Cancel, start);
            steps += r.Steps;
            if (r.Cancelled) return null;
            var image = r.Image.cpu();
            if (image.shape[2] != frame.shape[2] || image.shape[3] != frame.shape[3]) image = ImageIO.Resize(image, (int)frame.shape[2], (int)frame.shape[3]);
            return link?.Blend(image) ?? image;
        }));
        var results = run.Results(net.Name, null, o.Video.Flow, sw.Elapsed.TotalSeconds);
        return CoherentVideo.Finish(c, run, results, steps);
    }
}

/// <summary>The options of <c>reverie style grid</c>: rows of content layers by columns of content/style weight ratios.</summary>
public sealed record StyleGridJobOptions : JobOptions
{
    /// <summary>The content photo.</summary>
    public required string Content { get; init; }
    /// <summary>The style image.</summary>
    public required string StyleImage { get; init; }
    /// <summary>Content layers, one row each.</summary>
    public required IReadOnlyList<string> Rows { get; init; }
    /// <summary>Content/style weight ratios, one column each.</summary>
    public required IReadOnlyList<double> Ratios { get; init; }
    /// <summary>The transfer's settings (content layers and weight are set per cell).</summary>
    public StyleOptions Style { get; init; } = new();

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Content, StyleImage];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Style.ValidateNumbers();
        if (Rows.Count == 0 || Ratios.Count == 0) throw new BadInputException("--layers and --ratios need at least one value each.");
        if (Rows.Count * Ratios.Count > 64) throw new BadInputException($"A grid has at most 64 cells; got {Rows.Count}x{Ratios.Count}.");
        foreach (var r in Ratios) if (!(r > 0) || !double.IsFinite(r)) throw new BadInputException($"--ratios: '{r.ToString(CultureInfo.InvariantCulture)}' is not a positive number.");
    }
}

/// <summary>What a grid measured: the final style loss of each cell, by row.</summary>
internal sealed record StyleGridResults(string Model, IReadOnlyList<IReadOnlyList<double>> StyleLoss);

/// <summary><c>reverie style grid</c> as a job (Gatys et al.'s figure): one transfer per (content layer, ratio), content weight = ratio × style weight.</summary>
internal sealed class StyleGridJob : Job<StyleGridJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "style-grid";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(StyleGridJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        using var content = ImageIO.Load(o.Content, o.Style.Size);
        using var style = ImageIO.Load(o.StyleImage, StyleJob.StyleSide(o.Style));
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        o.Prepare(net);
        foreach (var l in o.Rows) net.ResolveLayer(l);
        var baseOptions = (o.Style with { ContentLayers = [o.Rows[0]] }).WithDefaultLayers(net) with { Seed = o.Seed };
        var images = new List<Tensor>();
        var losses = new List<IReadOnlyList<double>>();
        int cells = o.Rows.Count * o.Ratios.Count, done = 0, steps = baseOptions.Steps;
        for (int i = 0; i < o.Rows.Count && !c.Cancel.IsCancellationRequested; i++)
        {
            var row = new List<double>();
            for (int j = 0; j < o.Ratios.Count && !c.Cancel.IsCancellationRequested; j++)
            {
                var cell = baseOptions with { ContentLayers = [o.Rows[i]], ContentWeight = o.Ratios[j] * baseOptions.StyleWeight };
                var t = new StyleTransfer(net, content, [(style, 1.0)], cell);
                string label = $"{o.Rows[i]} ratio {o.Ratios[j]:G3}";
                var progress = c.Steps((long)done * steps, (long)cells * steps, s => $"{label}: iteration {s.Step}/{s.Steps}");
                var r = await Task.Run(() => t.RunFull(progress, c.Cancel));
                if (r.Cancelled) break;
                images.Add(r.Image);
                row.Add(t.Measure(r.Image).Style);
                done++;
            }
            if (row.Count > 0) losses.Add(row);
        }
        bool interrupted = c.Cancel.IsCancellationRequested;
        if (images.Count == 0) return new JobResult([], "interrupted before the first cell was done; nothing saved", true);
        var labels = o.Rows.SelectMany(l => o.Ratios.Select(r => $"{l} {r:G2}")).Take(images.Count).ToList();
        var grid = Grid.Make(images, o.Ratios.Count, labels);
        var results = new StyleGridResults(net.Name, losses);
        c.Save(grid, c.Output, results, done * steps, interrupted);
        return new JobResult([c.Output], $"{c.Output} (style loss per cell above)", interrupted, results);
    }

}
