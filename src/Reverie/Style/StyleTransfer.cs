using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Style;

/// <summary>Gram matrices of feature maps, normalized by C·H·W.</summary>
public static class Gram
{
    /// <summary>[N,C,H,W] → [N,C,C], F·Fᵀ / (C·H·W).</summary>
    public static Tensor Of(Tensor features)
    {
        long n = features.shape[0], c = features.shape[1];
        var f = features.reshape(n, c, -1);
        return matmul(f, f.transpose(1, 2)) / (c * f.shape[2]);
    }
}

/// <summary>Content loss: the mean squared difference between a layer's features and a target's.</summary>
public sealed class ContentLoss(string layer, Tensor target, string display) : Objective
{
    readonly Tensor _target = target.detach().to(ScalarType.Float32).clone();
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a) => (a[layer].to(ScalarType.Float32) - _target.to(a[layer].device)).pow(2).mean();
    /// <inheritdoc/>
    public override string Describe() => $"content({display})";
}

/// <summary>Style loss: the mean squared difference between a layer's Gram matrix and a target Gram matrix.</summary>
public sealed class StyleLoss(string layer, Tensor targetGram, string display) : Objective
{
    readonly Tensor _target = targetGram.detach().to(ScalarType.Float32).clone();
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a) => (Gram.Of(a[layer].to(ScalarType.Float32)) - _target.to(a[layer].device)).pow(2).mean();
    /// <inheritdoc/>
    public override string Describe() => $"style({display})";
}

/// <summary>How the image is optimized.</summary>
public enum StyleOptimizer
{
    /// <summary>L-BFGS (neural-style's default).</summary>
    Lbfgs,
    /// <summary>Adam.</summary>
    Adam,
}

/// <summary>Options of a Gatys style transfer; the defaults are jcjohnson/neural-style's.</summary>
public sealed record StyleOptions
{
    /// <summary>Weight of the content loss.</summary>
    public double ContentWeight { get; init; } = 5;
    /// <summary>Weight of the style loss.</summary>
    public double StyleWeight { get; init; } = 100;
    /// <summary>Weight of the total-variation loss (on the image in 0..255, as the network sees it).</summary>
    public double TvWeight { get; init; } = 1e-3;
    /// <summary>The optimizer.</summary>
    public StyleOptimizer Optimizer { get; init; } = StyleOptimizer.Lbfgs;
    /// <summary>Iterations.</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Start from the content image (true) or from noise.</summary>
    public bool InitFromContent { get; init; } = true;
    /// <summary>Longest side of the result, in pixels.</summary>
    public int Size { get; init; } = 512;
    /// <summary>Size of the style images relative to the result.</summary>
    public double StyleScale { get; init; } = 1.0;
    /// <summary>Keep the content's colours: transfer luminance only.</summary>
    public bool OriginalColors { get; init; }
    /// <summary>Adam's learning rate, in 0..1 image units (neural-style's 10 on 0..255).</summary>
    public double LearningRate { get; init; } = 10.0 / 255;
    /// <summary>Seed of the noise init.</summary>
    public int Seed { get; init; }
    /// <summary>Layers whose features are kept (content).</summary>
    public IReadOnlyList<string> ContentLayers { get; init; } = [];
    /// <summary>Layers whose Gram matrices are matched (style).</summary>
    public IReadOnlyList<string> StyleLayers { get; init; } = [];

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        if (Steps < 1 || Steps > 100_000) throw new BadInputException($"--steps must be from 1 to 100000; got {Steps}.");
        if (Size < 16 || Size > 4096) throw new BadInputException($"--size must be from 16 to 4096; got {Size}.");
        if (!(StyleScale > 0) || StyleScale > 8) throw new BadInputException($"--style-scale must be above 0 and at most 8; got {StyleScale}.");
        if (ContentWeight < 0 || StyleWeight < 0 || TvWeight < 0 || !double.IsFinite(ContentWeight + StyleWeight + TvWeight))
            throw new BadInputException("--content-weight, --style-weight and --tv-weight must be finite and not negative.");
        if (StyleLayers.Count == 0) throw new BadInputException("At least one style layer is needed (--style-layers).");
        if (ContentLayers.Count == 0 && ContentWeight > 0) throw new BadInputException("At least one content layer is needed (--content-layers), or --content-weight 0.");
    }
}

/// <summary>The losses at one iteration: content, style and TV unweighted, and the weighted total.</summary>
public sealed record StyleLosses(int Step, double Content, double Style, double Tv, double Total);

/// <summary>
/// Gatys et al.'s style transfer as a configuration of the engine: the pixels are the parameters,
/// the objective is a weighted sum of content losses (features at chosen layers) and style losses
/// (Gram matrices at chosen layers, blended over several style images by weight), plus total
/// variation; the step rule is L-BFGS or Adam.
/// </summary>
public sealed class StyleTransfer
{
    /// <summary>The network.</summary>
    public INetwork Network { get; }
    /// <summary>The options.</summary>
    public StyleOptions Options { get; }
    /// <summary>The content image at the result's size [1,3,H,W].</summary>
    public Tensor Content { get; }
    /// <summary>The content term (unweighted), or null without content layers.</summary>
    public Objective? ContentTerm { get; }
    /// <summary>The style term (unweighted).</summary>
    public Objective StyleTerm { get; }
    /// <summary>The losses after each iteration.</summary>
    public List<StyleLosses> History { get; } = new();

    /// <summary>Prepares the targets: the content's features, and the weighted blend of the styles' Gram matrices.</summary>
    public StyleTransfer(INetwork network, Tensor content, IReadOnlyList<(Tensor Image, double Weight)> styles, StyleOptions options)
    {
        options.Validate();
        if (styles.Count == 0) throw new BadInputException("At least one style image is needed.");
        if (styles.Any(s => !(s.Weight > 0))) throw new BadInputException("Style weights must be above 0.");
        Network = network;
        Options = options;
        var device = network.Device;
        double f = (double)options.Size / Math.Max(content.shape[2], content.shape[3]);
        Content = ImageIO.Resize(content, Math.Max(1, (int)Math.Round(content.shape[2] * f)), Math.Max(1, (int)Math.Round(content.shape[3] * f))).to(device);
        var contentLayers = options.ContentLayers.Select(network.ResolveLayer).ToList();
        var styleLayers = options.StyleLayers.Select(network.ResolveLayer).ToList();
        using (no_grad())
        {
            if (contentLayers.Count > 0)
            {
                var acts = network.Forward(Content, contentLayers);
                ContentTerm = contentLayers.Select((l, i) => (Objective)new ContentLoss(l, acts[l], options.ContentLayers[i])).Aggregate((a, b) => a + b);
            }
            double total = styles.Sum(s => s.Weight);
            var grams = new Dictionary<string, Tensor>();
            foreach (var (image, weight) in styles)
            {
                using var scope = NewDisposeScope();
                double g = options.Size * options.StyleScale / Math.Max(image.shape[2], image.shape[3]);
                var s = ImageIO.Resize(image, Math.Max(1, (int)Math.Round(image.shape[2] * g)), Math.Max(1, (int)Math.Round(image.shape[3] * g))).to(device);
                var acts = network.Forward(s, styleLayers);
                foreach (var l in styleLayers)
                {
                    var gram = Gram.Of(acts[l].to(ScalarType.Float32)) * (weight / total);
                    grams[l] = grams.TryGetValue(l, out var prev) ? (prev + gram).MoveToOuterDisposeScope() : gram.MoveToOuterDisposeScope();
                }
            }
            StyleTerm = styleLayers.Select((l, i) => (Objective)new StyleLoss(l, grams[l], options.StyleLayers[i])).Aggregate((a, b) => a + b);
        }
    }

    /// <summary>Total variation, half the sum of squared differences of neighbours, on the image scaled to 0..255 (neural-style's TV loss).</summary>
    public static Tensor TotalVariation(Tensor image)
    {
        var x = image * 255;
        var dx = x.narrow(3, 1, x.shape[3] - 1) - x.narrow(3, 0, x.shape[3] - 1);
        var dy = x.narrow(2, 1, x.shape[2] - 1) - x.narrow(2, 0, x.shape[2] - 1);
        return 0.5 * (dx.pow(2).sum() + dy.pow(2).sum());
    }

    /// <summary>Evaluates the losses at an image; returns the weighted total (differentiable) and the parts.</summary>
    public (Tensor Total, double Content, double Style, double Tv) Losses(Tensor image)
    {
        var layers = (ContentTerm?.Layers ?? []).Concat(StyleTerm.Layers).Distinct().ToList();
        var acts = Network.Forward(image, layers);
        var style = StyleTerm.Evaluate(acts);
        var content = ContentTerm?.Evaluate(acts);
        var tv = TotalVariation(image);
        var total = Options.StyleWeight * style + Options.TvWeight * tv;
        if (content is not null) total = total + Options.ContentWeight * content;
        return (total, content?.item<float>() ?? 0, style.item<float>(), tv.item<float>());
    }

    /// <summary>Runs the optimization and returns the image [1,3,H,W] in 0..1.</summary>
    public Tensor Run(IProgress<StyleLosses>? progress = null, CancellationToken cancel = default, int snapshotEvery = 0, Action<int, Tensor>? snapshot = null)
    {
        var o = Options;
        var start = o.InitFromContent ? Content.clone()
            : rand(Content.shape, generator: new Generator((ulong)o.Seed), device: Content.device);
        var pixels = new TorchSharp.Modules.Parameter(start);
        int step = 0;
        void Record(double c, double s, double tv, double total)
        {
            var l = new StyleLosses(step, c, s, tv, total);
            History.Add(l);
            progress?.Report(l);
            if (snapshot is not null && snapshotEvery > 0 && step % snapshotEvery == 0)
                using (no_grad()) snapshot(step, Finish(pixels));
        }
        if (o.Optimizer == StyleOptimizer.Adam)
        {
            using var adam = optim.Adam([pixels], o.LearningRate);
            for (step = 1; step <= o.Steps && !cancel.IsCancellationRequested; step++)
            {
                using var scope = NewDisposeScope();
                adam.zero_grad();
                var (total, c, s, tv) = Losses(pixels);
                total.backward();
                adam.step();
                Record(c, s, tv, total.item<float>());
            }
        }
        else
        {
            // One L-BFGS iteration per call, so that progress and cancellation are seen; the
            // optimizer keeps its curvature history between calls.
            using var lbfgs = optim.LBFGS([pixels], lr: 1, max_iter: 1, history_size: 100);
            (double C, double S, double Tv, double Total) last = default;
            for (step = 1; step <= o.Steps && !cancel.IsCancellationRequested; step++)
            {
                lbfgs.step(() =>
                {
                    lbfgs.zero_grad();
                    var (total, c, s, tv) = Losses(pixels);
                    total.backward();
                    last = (c, s, tv, total.item<float>());
                    return total;
                });
                Record(last.C, last.S, last.Tv, last.Total);
                if (!double.IsFinite(last.Total)) break;
            }
        }
        using (no_grad()) return Finish(pixels);
    }

    Tensor Finish(Tensor pixels)
    {
        var result = pixels.detach().clamp(0, 1);
        return Options.OriginalColors ? Filters.TransferLuminance(result, Content) : result.clone();
    }

    /// <summary>The losses of an image against these targets (no gradient).</summary>
    public StyleLosses Measure(Tensor image)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (total, c, s, tv) = Losses(image.to(Content.device));
        return new StyleLosses(0, c, s, tv, total.item<float>());
    }
}
