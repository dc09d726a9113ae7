using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Style;

/// <summary>How the image is optimized.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<StyleOptimizer>))]
public enum StyleOptimizer
{
    /// <summary>L-BFGS (neural-style's default).</summary>
    Lbfgs,
    /// <summary>Adam.</summary>
    Adam,
}

/// <summary>How the style transfer's loss terms are scaled (<see cref="StyleOptions.LossScale"/>).</summary>
internal enum StyleLossScale
{
    /// <summary><see cref="NeuralStyle"/> on VGG (whose numbers those are), <see cref="Normalized"/> on every other network.</summary>
    Auto,
    /// <summary>jcjohnson/neural-style's raw terms: mean squared feature and Gram differences, TV on 0..255. Its weights were tuned for VGG-19.</summary>
    NeuralStyle,
    /// <summary>
    /// Each term divided by its size on the targets, so that the weights mean the same on every
    /// network: content by the mean square of the content features, each style layer by the mean
    /// square of the style's Gram matrix (averaged over the layers), TV as the mean squared
    /// difference of neighbours on 0..1.
    /// </summary>
    Normalized,
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
    /// <summary>Seed of the noise init (a job's recipe holds it once, as the job's seed).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Seed { get; init; }
    /// <summary>Layers whose features are kept (content).</summary>
    public IReadOnlyList<string> ContentLayers { get; init; } = [];
    /// <summary>Layers whose Gram matrices are matched (style).</summary>
    public IReadOnlyList<string> StyleLayers { get; init; } = [];
    /// <summary>
    /// How the loss terms are scaled, the weights multiplying the scaled terms: <c>neural-style</c>
    /// (jcjohnson/neural-style's raw terms, whose weights were tuned for VGG-19), <c>normalized</c> (each
    /// term divided by its size on the targets, so that the weights mean the same on every network), or
    /// <c>auto</c>: neural-style's on VGG, normalized elsewhere.
    /// </summary>
    public string LossScale { get; init; } = "auto";

    /// <summary><see cref="LossScale"/> parsed.</summary>
    internal StyleLossScale Scale => LossScale switch
    {
        "auto" => StyleLossScale.Auto,
        "neural-style" => StyleLossScale.NeuralStyle,
        "normalized" => StyleLossScale.Normalized,
        _ => throw new BadInputException($"--loss-scale must be auto, neural-style or normalized; got '{BadInputException.Shown(LossScale)}'."),
    };

    /// <summary>The scale used on <paramref name="net"/>: auto resolved (neural-style's on VGG's layer names).</summary>
    internal StyleLossScale ScaleOn(INetwork net) => Scale != StyleLossScale.Auto ? Scale
        : net.HasLayer("relu4_2") ? StyleLossScale.NeuralStyle : StyleLossScale.Normalized;

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        ValidateNumbers();
        if (StyleLayers.Count == 0) throw new BadInputException("At least one style layer is needed (--style-layers).");
        if (ContentLayers.Count == 0 && ContentWeight > 0) throw new BadInputException("At least one content layer is needed (--content-layers), or --content-weight 0.");
    }

    /// <summary>Checks every value but the layers (which may be left to the network's defaults).</summary>
    public void ValidateNumbers()
    {
        Check.Finite(("--content-weight", ContentWeight), ("--style-weight", StyleWeight), ("--tv-weight", TvWeight), ("--style-scale", StyleScale), ("--lr", LearningRate));
        _ = Scale;
        if (!(LearningRate > 0)) throw new BadInputException($"--lr must be above 0; got {LearningRate}.");
        if (Steps < 1 || Steps > 100_000) throw new BadInputException($"--steps must be from 1 to 100000; got {Steps}.");
        if (Size < 16 || Size > 4096) throw new BadInputException($"--size must be from 16 to 4096; got {Size}.");
        if (!(StyleScale > 0) || StyleScale > 8) throw new BadInputException($"--style-scale must be above 0 and at most 8; got {StyleScale}.");
        if (ContentWeight < 0 || StyleWeight < 0 || TvWeight < 0 || !double.IsFinite(ContentWeight + StyleWeight + TvWeight))
            throw new BadInputException("--content-weight, --style-weight and --tv-weight must be finite and not negative.");
    }

    /// <summary>These options with the network's default layers where none were given: neural-style's for VGG names, their GoogLeNet counterparts otherwise.</summary>
    public StyleOptions WithDefaultLayers(INetwork net)
    {
        if (ContentLayers.Count > 0 && StyleLayers.Count > 0) return this;
        (string[] Content, string[] Style) d;
        if (net.HasLayer("relu4_2")) d = (["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]);
        else if (net.HasLayer("inception_4a/output"))
            d = (["inception_4a/output"], ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output"]);
        else throw new BadInputException($"Model '{net.Name}' has no default {(StyleLayers.Count == 0 ? "style" : "content")} layers; give --content-layers and --style-layers.");
        return this with { ContentLayers = ContentLayers.Count > 0 ? ContentLayers : d.Content, StyleLayers = StyleLayers.Count > 0 ? StyleLayers : d.Style };
    }
}

/// <summary>The losses at one iteration: content, style and TV unweighted, and the weighted total.</summary>
public sealed record StyleLosses(int Step, double Content, double Style, double Tv, double Total);

/// <summary>
/// Gatys et al.'s style transfer as a configuration of the engine: the pixels are the parameters,
/// the objective is minus the weighted sum of content losses (features at chosen layers), style
/// losses (Gram matrices at chosen layers, blended over several style images by weight) and total
/// variation; the step rule is L-BFGS or Adam. The targets come from one capture pass per image.
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

    /// <summary>The objective maximized: −(content weight · content + style weight · style + TV weight · TV), its terms labelled "content", "style" and "tv".</summary>
    public Objective Objective { get; }

    /// <summary>Prepares the targets: the content's features, and the weighted blend of the styles' Gram matrices.</summary>
    public StyleTransfer(INetwork network, Tensor content, IReadOnlyList<(Tensor Image, double Weight)> styles, StyleOptions options)
    {
        options.Validate();
        if (styles.Count == 0) throw new BadInputException("At least one style image is needed.");
        if (styles.Any(s => !(s.Weight > 0) || !double.IsFinite(s.Weight))) throw new BadInputException("Style weights must be finite and above 0.");
        Network = network;
        Options = options;
        bool normalized = options.ScaleOn(network) == StyleLossScale.Normalized;
        Content = Capture.ScaleTo(content, options.Size).to(network.Device);
        var contentLayers = options.ContentLayers.Select(network.ResolveLayer).ToList();
        var styleLayers = options.StyleLayers.Select(network.ResolveLayer).ToList();
        if (contentLayers.Count > 0)
        {
            var acts = Capture.Features(network, Content, contentLayers);
            ContentTerm = contentLayers.Select((l, i) => (Objective)new ContentLoss(l, acts[l], options.ContentLayers[i], normalized ? 1.0 / contentLayers.Count : null)).Aggregate((a, b) => a + b);
        }
        double total = styles.Sum(s => s.Weight);
        var grams = new Dictionary<string, Tensor>();
        using (no_grad())
            foreach (var (image, weight) in styles)
            {
                using var scope = NewDisposeScope();
                var acts = Capture.Features(network, Capture.ScaleTo(image, options.Size * options.StyleScale), styleLayers);
                foreach (var l in styleLayers)
                {
                    var gram = Gram.Of(acts[l]) * S((weight / total));
                    grams[l] = grams.TryGetValue(l, out var prev) ? (prev + gram).MoveToOuterDisposeScope() : gram.MoveToOuterDisposeScope();
                }
            }
        StyleTerm = styleLayers.Select((l, i) => (Objective)new StyleLoss(l, grams[l], options.StyleLayers[i], normalized ? 1.0 / styleLayers.Count : null)).Aggregate((a, b) => a + b);
        var tv = normalized ? Objectives.TotalVariation.Normalized(1) : Objectives.TotalVariation.NeuralStyle();
        var loss = options.StyleWeight * NormalizedStyleFactor(normalized) * StyleTerm.As("style") + options.TvWeight * NormalizedTvFactor(normalized) * tv.As("tv");
        if (ContentTerm is not null) loss = loss + options.ContentWeight * NormalizedContentFactor(normalized) * ContentTerm.As("content");
        Objective = -1.0 * loss;
    }

    // With normalized terms, neural-style's default weights (content 5, style 100, TV 1e-3) become
    // content 1.25, style 10 and TV 1, so that a user's --style-weight 200 still means twice the default.
    // Measured on BVLC GoogLeNet (GatysDefaultsTests, StyleTransferTests): coffee + Hubble at 256 px,
    // 100 L-BFGS iterations, Gram distance ratio 0.20 (0.39 with the raw terms) and content distance 0.76
    // (0.59); style 30 or 100 reach no lower a style loss in 100 iterations and keep less of the content.
    const double NormalizedContent = 1.25, NormalizedStyle = 10, NormalizedTv = 1;
    static double NormalizedContentFactor(bool normalized) => normalized ? NormalizedContent / 5 : 1;
    static double NormalizedStyleFactor(bool normalized) => normalized ? NormalizedStyle / 100 : 1;
    static double NormalizedTvFactor(bool normalized) => normalized ? NormalizedTv / 1e-3 : 1;

    /// <summary>Total variation, half the sum of squared differences of neighbours, on the image scaled to 0..255 (neural-style's TV loss).</summary>
    public static Tensor TotalVariation(Tensor image) =>
        Objectives.TotalVariation.NeuralStyle().Evaluate(new Features(new Dictionary<string, Tensor>(), image));

    StyleLosses LossesOf(int step, double value, IReadOnlyDictionary<string, double> terms) =>
        new(step, terms.GetValueOrDefault("content"), terms.GetValueOrDefault("style"), terms.GetValueOrDefault("tv"), -value);

    /// <summary>Runs the optimization and returns the image [1,3,H,W] in 0..1.</summary>
    public Tensor Run(IProgress<StyleLosses>? progress = null, CancellationToken cancel = default, int snapshotEvery = 0, Action<int, Tensor>? snapshot = null) =>
        Optimize(progress, null, cancel, snapshotEvery, snapshot).Image;

    /// <summary>As <see cref="Run"/>, with the iterations taken and whether it was cancelled.</summary>
    public OptimizationResult RunFull(IProgress<OptimizationStep>? steps = null, CancellationToken cancel = default, int snapshotEvery = 0, Action<int, Tensor>? snapshot = null) =>
        Optimize(null, steps, cancel, snapshotEvery, snapshot);

    /// <summary>As <see cref="RunFull(IProgress{OptimizationStep}?, CancellationToken, int, Action{int, Tensor}?)"/>, from <paramref name="start"/> (the content's size) instead of the content or noise.</summary>
    internal OptimizationResult RunFull(IProgress<OptimizationStep>? steps, CancellationToken cancel, Tensor? start) =>
        Optimize(null, steps, cancel, 0, null, start);

    OptimizationResult Optimize(IProgress<StyleLosses>? progress, IProgress<OptimizationStep>? steps, CancellationToken cancel, int snapshotEvery, Action<int, Tensor>? snapshot, Tensor? from = null)
    {
        var o = Options;
        var start = from?.clone() ?? (o.InitFromContent ? Content.clone()
            : rand(Content.shape, generator: new Generator((ulong)o.Seed), device: Content.device));
        var events = new Progress(this, progress, steps, snapshotEvery, snapshot);
        var result = new ImageOptimizer
        {
            Network = Network,
            Objective = Objective,
            Parameterization = new UnclippedPixels(start),
            StepRule = o.Optimizer == StyleOptimizer.Adam ? new AdamStep(o.LearningRate) : new LbfgsStep(),
            Schedule = new StopWhen(new FixedSteps(o.Steps), s => !double.IsFinite(s.Value)),
        }.Run(events, cancel);
        using (no_grad()) return result with { Image = Finish(result.Image) };
    }

    sealed class Progress(StyleTransfer t, IProgress<StyleLosses>? inner, IProgress<OptimizationStep>? steps, int every, Action<int, Tensor>? snapshot) : IProgress<OptimizationStep>
    {
        public void Report(OptimizationStep s)
        {
            var l = t.LossesOf(s.Done, s.Value, s.Terms);
            t.History.Add(l);
            inner?.Report(l);
            steps?.Report(s);
            if (snapshot is not null && every > 0 && s.Done % every == 0)
                using (no_grad()) snapshot(s.Done, t.Finish(s.Image()));
        }
    }

    /// <summary>neural-style optimizes the raw pixels and clips only the result.</summary>
    sealed class UnclippedPixels(Tensor start) : IParameterization
    {
        readonly TorchSharp.Modules.Parameter _pixels = new(start.detach().clone());
        public IReadOnlyList<TorchSharp.Modules.Parameter> Parameters => [_pixels];
        public Tensor Image() => _pixels;
    }

    Tensor Finish(Tensor pixels)
    {
        var result = pixels.detach().clamp(S(0), S(1));
        return Options.OriginalColors ? Filters.TransferLuminance(result, Content) : result;
    }

    /// <summary>The losses of an image against these targets (no gradient).</summary>
    public StyleLosses Measure(Tensor image)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = image.to(Content.device);
        var terms = new Dictionary<string, double>();
        var layers = Objective.Layers.ToList();
        double value = Objective.Evaluate(new Features(Network.Forward(x, layers), x, terms: terms)).to(ScalarType.Float64).item<double>();
        return LossesOf(0, value, terms);
    }
}
