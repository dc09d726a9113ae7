using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Models.Registry;
using Reverie.Objectives;
using Reverie.Optimization;
using Reverie.Visualization;
using static TorchSharp.torch;

namespace Reverie.Explaining;

/// <summary>
/// The options of <c>reverie activations</c>: which layer of the network to look at for a photo,
/// how many of its channels, and how to draw what each channel responds to.
/// </summary>
internal sealed record ActivationsJobOptions : JobOptions
{
    /// <summary>The photo (an absolute path in recipes).</summary>
    public required string Image { get; init; }
    /// <summary>The layer; it must have channels and positions.</summary>
    public required string Layer { get; init; }
    /// <summary>How many channels, the most active first.</summary>
    public int Top { get; init; } = 8;
    /// <summary>The feature visualizations' settings (small and short by default: they are thumbnails).</summary>
    public VisualizeOptions Visualize { get; init; } = new() { Size = 128, Steps = 128 };
    /// <summary>Reuse feature visualizations made before with the same model, layer, channel and settings.</summary>
    public bool Cache { get; init; } = true;

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Image];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Top is < 1 or > 64) throw new BadInputException($"--top must be from 1 to 64; got {Top}.");
        (Visualize with { Batch = 1 }).Validate();
        if (string.IsNullOrWhiteSpace(Layer)) throw new BadInputException("--layer must name a layer.");
    }
}

/// <summary>One channel the photo drives: its mean and largest activation, and how far its mean stands above the layer's (in standard deviations of the channels' means).</summary>
internal sealed record ActiveChannel(int Channel, double Mean, double Max, double Z, bool CachedVisualization);

/// <summary>What <c>reverie activations</c> found.</summary>
internal sealed record ActivationsResults(string Model, string Layer, long Channels, IReadOnlyList<ActiveChannel> Top, string VisualizationCache);

/// <summary>
/// <c>reverie activations</c> as a job: the channels of a layer this photo drives most (by mean
/// activation), each shown twice: where in the photo it fires (its activation map over the photo)
/// and what it responds to in general (its feature visualization, made once and kept in the cache,
/// keyed by the model's weights, the layer, the channel and the settings).
/// </summary>
internal sealed class ActivationsJob : Job<ActivationsJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "activations";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    const int Side = 256;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(ActivationsJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        string model = o.Model ?? "googlenet";
        using var net = await c.OpenModelAsync(model);
        o.Prepare(net);
        string layer = net.ResolveLayer(o.Layer);
        using var photo = ImageIO.Load(o.Image, 2 * Math.Max(Side, Math.Max(net.Input.Width, net.Input.Height)));
        using var scope = NewDisposeScope();
        var x = ImageIO.Resize(photo, net.Input.Height, net.Input.Width).to(net.Device);
        Tensor acts;
        using (no_grad()) acts = Capture.Features(net, x, [layer])[layer].to(ScalarType.Float32).cpu();
        if (acts.dim() != 4 || acts.shape[2] * acts.shape[3] < 2)
            throw new BadInputException($"'{BadInputException.Shown(o.Layer)}' has shape [{string.Join(",", acts.shape)}]: activations need a layer with channels and positions.");
        long channels = acts.shape[1];
        if (o.Top > channels) throw new BadInputException($"--top {o.Top} is more than the {channels} channels of '{BadInputException.Shown(o.Layer)}'.");
        var means = acts[0].flatten(1).mean([1]);
        var maxes = acts[0].flatten(1).amax([1]);
        double mu = means.mean().item<float>(), sigma = Math.Max(means.std().item<float>(), 1e-12);
        var order = means.argsort(descending: true).narrow(0, 0, o.Top).data<long>().Select(i => (int)i).ToList();

        // Feature visualizations: from the cache, or made now, all missing channels in one batch.
        string dir = ChannelCache.Dir(c.Registry, model, net.Layers.First(l => l.Name == layer || l.Aliases.Contains(layer)).Name, o.Visualize, o.Precision);
        string File(int ch) => ChannelCache.File(dir, ch, o.Visualize, o.Seed);
        var tiles = new Dictionary<int, Tensor>();
        var cached = new HashSet<int>();
        foreach (int ch in order)
            if (o.Cache && ChannelCache.Load(File(ch)) is { } tile) { tiles[ch] = tile; cached.Add(ch); } // a damaged cache file is made again
        var missing = order.Where(ch => !tiles.ContainsKey(ch)).ToList();
        if (missing.Count > 0)
        {
            Objective objective = missing.Select((ch, i) => (Objective)new ChannelObjective(layer, ch, o.Layer, i)).Aggregate((a, b) => a + b);
            var options = o.Visualize with { Batch = missing.Count, Seed = o.Seed, BFloat16 = o.BFloat16 };
            var progress = c.Steps(0, o.Visualize.Steps, s => $"visualizing {missing.Count} channels: step {s.Step}/{s.Steps}");
            var r = await Task.Run(() => new FeatureVisualizer(net, objective, options).RunFull(progress, c.Cancel));
            if (r.Cancelled)
            {
                c.Save(photo, c.Output, null, 0, interrupted: true);
                return new JobResult([], "interrupted before the visualizations were done: nothing saved", true);
            }
            for (int i = 0; i < missing.Count; i++)
                tiles[missing[i]] = ChannelCache.Keep(r.Image.narrow(0, i, 1), o.Cache ? File(missing[i]) : null);
        }

        var display = Capture.Shrink(photo, Side);
        var panels = new List<Tensor>();
        var top = new List<ActiveChannel>();
        foreach (int ch in order)
        {
            double mean = means[ch].item<float>(), max = maxes[ch].item<float>();
            var a = new ActiveChannel(ch, mean, max, (mean - mu) / sigma, cached.Contains(ch));
            top.Add(a);
            panels.Add(Overlay.Draw(display, acts[0, ch], false, $"channel {ch}: in this photo",
                string.Create(CultureInfo.InvariantCulture, $"mean {mean:G3} ({a.Z:+0.0;-0.0} σ), max {max:G3}")));
            panels.Add(Overlay.Draw(Fit(tiles[ch], display), null, false, $"channel {ch}: in general", $"feature visualization{(a.CachedVisualization ? " (cached)" : "")}"));
        }
        var picture = Grid.Make(panels, 4, gap: 6);
        var results = new ActivationsResults(net.Name, o.Layer, channels, top, dir);
        c.Note($"layer {o.Layer}: {channels} channels; feature visualizations cached in {dir}");
        c.Save(picture, c.Output, results, o.Visualize.Steps);
        return new JobResult([c.Output], $"{c.Output} (the {o.Top} channels of {o.Layer} this photo drives most)", false, results);
    }

    /// <summary>A square visualization on a white canvas of the photo's size, as large as fits, undistorted.</summary>
    static Tensor Fit(Tensor tile, Tensor like)
    {
        int h = (int)like.shape[2], w = (int)like.shape[3], side = Math.Min(h, w);
        var canvas = ones(1, 3, h, w);
        canvas.narrow(2, (h - side) / 2, side).narrow(3, (w - side) / 2, side).copy_(ImageIO.Resize(tile, side, side));
        return canvas;
    }
}
