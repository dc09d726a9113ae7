using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>One step of an optimization, as reported while it runs.</summary>
/// <param name="Stage">The stage (octave), from 0.</param>
/// <param name="Stages">The number of stages.</param>
/// <param name="Step">Steps done in this stage, from 1.</param>
/// <param name="Steps">Steps in this stage.</param>
/// <param name="Value">The objective's value at this step (before its update).</param>
/// <param name="Terms">The values of the objective's named terms (<see cref="Objective.As"/>).</param>
public sealed record OptimizationStep(int Stage, int Stages, int Step, int Steps, double Value, IReadOnlyDictionary<string, double> Terms)
{
    /// <summary>Steps done over all stages.</summary>
    public int Done { get; init; }
    /// <summary>Steps over all stages.</summary>
    public int Total { get; init; }
    /// <summary>The image as it stands, at full size; valid only while the report is being handled. A method that gives none leaves <see cref="NoImage"/>, and jobs then send no preview.</summary>
    public Func<Tensor> Image { get; init; } = NoImage;

    /// <summary>What <see cref="Image"/> is when a report carries no image: it throws.</summary>
    internal static readonly Func<Tensor> NoImage = () => throw new InvalidOperationException("This step report carries no image.");
}

/// <summary>What an optimization ended with.</summary>
/// <param name="Image">The result, RGB [N,3,H,W] in 0..1 at full size.</param>
/// <param name="Steps">Updates made over all stages.</param>
/// <param name="Cancelled">Whether cancellation stopped it (the image is as far as it got).</param>
/// <param name="Value">The objective at the last evaluation (NaN before any).</param>
/// <param name="Terms">The named terms at the last evaluation.</param>
public sealed record OptimizationResult(Tensor Image, int Steps, bool Cancelled, double Value, IReadOnlyDictionary<string, double> Terms);

/// <summary>
/// The one optimization loop under every image method: an image is produced from parameters
/// (<see cref="IParameterization"/>), run through transforms (<see cref="ITransform"/>), fed to the
/// network, scored by an <see cref="Objective"/>, and the parameters are moved by a step rule
/// (<see cref="IStepRule"/>) under a schedule (<see cref="ISchedule"/>). DeepDream, feature
/// visualization, dreaming toward a target, inversion, style transfer and the gradient attacks
/// are configurations of it.
/// <para>
/// The objective's gradient is taken with respect to the image the network sees, then carried
/// back through the transforms and the parameterization. That split lets the network part run
/// tile by tile (<see cref="Tile"/>: each tile plus a margin of context is run on its own and only
/// its centre's gradient is kept, so memory depends on the tile size, not on the image) and in
/// another precision (<see cref="ComputeType"/>). Terms that are not local (class scores, Gram
/// matrices, regularizers on the whole image) are evaluated on the whole image.
/// </para>
/// </summary>
internal sealed class ImageOptimizer
{
    /// <summary>The network; may be null when the objective reads no layer (a regularizer alone).</summary>
    public INetwork? Network { get; init; }
    /// <summary>What is maximized.</summary>
    public required Objective Objective { get; init; }
    /// <summary>How the image is made from parameters.</summary>
    public required IParameterization Parameterization { get; init; }
    /// <summary>Random, differentiable changes before the network sees the image; null for none.</summary>
    public ITransform? Transform { get; init; }
    /// <summary>How parameters move.</summary>
    public required IStepRule StepRule { get; init; }
    /// <summary>Steps per stage, rate and early stop.</summary>
    public required ISchedule Schedule { get; init; }
    /// <summary>The source of the transforms' random choices.</summary>
    public Random Random { get; init; } = new(0);
    /// <summary>Tile size in pixels for the network part; 0 computes the whole image at once.</summary>
    public int Tile { get; init; }
    /// <summary>Context added around each tile, in pixels.</summary>
    public int TileMargin { get; init; } = 32;
    /// <summary>
    /// Precision of the network's computation (its weights must be in it): null keeps the image's;
    /// BFloat16 uses the CPU's bf16 units. The image, the gradient and the objective stay in float32.
    /// </summary>
    public ScalarType? ComputeType { get; init; }
    /// <summary>Steps at the start during which ReLU gradients leak (Lucid redirects them for its first 16), so that units dead on the start image can be reached.</summary>
    public int LeakyReluSteps { get; init; }
    /// <summary>A change to each parameter's loss gradient before the update (DeepDream's smoothing), given the stage and the number of stages.</summary>
    public Func<Tensor, int, int, Tensor>? GradientFilter { get; init; }

    /// <summary>Runs every stage and returns the result; on cancellation, the image as far as it got.</summary>
    public OptimizationResult Run(IProgress<OptimizationStep>? progress = null, CancellationToken cancel = default)
    {
        if (Network is null && (Objective.Layers.Count > 0 || Objective.InputSizeLayers.Count > 0))
            throw new InvalidOperationException("The objective reads layers, and no network was given.");
        var p = Parameterization;
        int stages = p.Stages;
        int total = Enumerable.Range(0, stages).Sum(s => Schedule.Steps(s, stages));
        int done = 0;
        bool cancelled = false, stopped = false;
        double lastValue = double.NaN;
        IReadOnlyDictionary<string, double> lastTerms = new Dictionary<string, double>();
        for (int stage = 0; stage < stages && !cancelled && !stopped; stage++)
        {
            p.BeginStage(stage);
            StepRule.Begin(p.Parameters);
            int steps = Schedule.Steps(stage, stages);
            for (int step = 0; step < steps; step++)
            {
                if (cancel.IsCancellationRequested) { cancelled = true; break; }
                using var scope = NewDisposeScope();
                using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the step
                double rate = Schedule.Rate(stage, step, steps);
                (double Value, Dictionary<string, double> Terms) last = (double.NaN, new());
                double Closure()
                {
                    last = Evaluate(done);
                    return -last.Value;
                }
                OptimizationStep Report(int s) => new(stage, stages, s, steps, last.Value, last.Terms) { Done = done, Total = total, Image = p.Result };
                if (StepRule.UsesClosure) StepRule.Step(rate, Closure);
                else
                {
                    Closure();
                    if (Schedule.Stop(Report(step)))
                    {
                        stopped = true;
                        (lastValue, lastTerms) = (last.Value, last.Terms);
                        progress?.Report(Report(step));
                        break;
                    }
                    if (GradientFilter is { } filter)
                        using (no_grad())
                            foreach (var param in p.Parameters)
                                if (param.grad is { } g) g.copy_(filter(g, stage, stages));
                    StepRule.Step(rate, null);
                }
                p.AfterStep();
                done++;
                (lastValue, lastTerms) = (last.Value, last.Terms);
                progress?.Report(Report(step + 1));
                if (StepRule.UsesClosure && Schedule.Stop(Report(step + 1))) { stopped = true; break; }
            }
            if (!cancelled) p.EndStage(stage);
        }
        StepRule.Dispose();
        return new OptimizationResult(p.Result(), done, cancelled, lastValue, lastTerms);
    }

    /// <summary>Zeroes the gradients, evaluates the objective at the current parameters and back-propagates minus its gradient (the loss's) into them.</summary>
    (double Value, Dictionary<string, double> Terms) Evaluate(int done)
    {
        // Gradients are dropped rather than zeroed, so that back-propagation hands its result to the
        // parameters without another full-size buffer (a 4096² image is 200 MB a copy).
        foreach (var param in Parameterization.Parameters) param.grad = null;
        var image = Parameterization.Image();
        var x = Transform?.Apply(image, Random) ?? image;
        using var leak = done < LeakyReluSteps ? Models.ReluGradients.Redirect(0.1) : null;
        var terms = new Dictionary<string, double>();
        var (value, gradient) = Gradient(x, terms);
        using (var loss = gradient.neg_()) autograd.backward([x], [loss]);
        if (!ReferenceEquals(x, image)) x.Dispose();
        return (value, terms);
    }

    /// <summary>The objective and its gradient with respect to <paramref name="x"/> (as a detached input), tile by tile where the objective allows.</summary>
    internal (double Value, Tensor Gradient) Gradient(Tensor x, Dictionary<string, double>? terms = null)
    {
        var image = x.detach();
        long h = image.shape[2], w = image.shape[3];
        bool tiled = Tile > 0 && (h > Tile || w > Tile);
        var local = tiled ? Objective.WeightedTerms.Where(t => t.Term.Tileable).ToList() : [];
        if (local.Count == 0) return Whole(image, Objective, terms);
        var whole = Objective.WeightedTerms.Where(t => !t.Term.Tileable).ToList();
        var localObjective = new Objective.Sum(local);
        var grad = zeros_like(image);
        double total = 0;
        for (long y = 0; y < h; y += Tile)
        for (long x0 = 0; x0 < w; x0 += Tile)
        {
            using var scope = NewDisposeScope();
            long th = Math.Min(Tile, h - y), tw = Math.Min(Tile, w - x0);
            long ya = Math.Max(0, y - TileMargin), xa = Math.Max(0, x0 - TileMargin);
            long yb = Math.Min(h, y + th + TileMargin), xb = Math.Min(w, x0 + tw + TileMargin);
            var crop = image.narrow(2, ya, yb - ya).narrow(3, xa, xb - xa);
            var (v, g) = Whole(crop, localObjective, terms);
            total += v;
            using (no_grad())
                grad.narrow(2, y, th).narrow(3, x0, tw).copy_(g.narrow(2, y - ya, th).narrow(3, x0 - xa, tw));
        }
        if (whole.Count > 0)
        {
            var (v, g) = Whole(image, new Objective.Sum(whole), terms);
            total += v;
            using (no_grad()) grad.add_(g);
            g.Dispose();
        }
        return (total, grad);
    }

    (double, Tensor) Whole(Tensor image, Objective objective, Dictionary<string, double>? terms)
    {
        using var scope = NewDisposeScope();
        var x = image.detach().requires_grad_(true); // shares the image's memory; nothing writes to it here
        var input = ComputeType is { } ct && ct != x.dtype ? x.to(ct) : x;
        var layers = objective.Layers.ToList();
        var inputLayers = objective.InputSizeLayers.ToList();
        var net = Network;
        IReadOnlyDictionary<string, Tensor> acts = new Dictionary<string, Tensor>(), atInput = acts;
        bool nativeSize = net is not null && input.shape[2] == net.Input.Height && input.shape[3] == net.Input.Width;
        if (net is not null && nativeSize && inputLayers.Count > 0)
            acts = atInput = ForwardAtInputSize(net, input, layers.Union(inputLayers).ToList());
        else
        {
            if (layers.Count > 0) acts = Capture.Forward(net!, input, layers);
            if (inputLayers.Count > 0) atInput = ForwardAtInputSize(net!, input, inputLayers);
        }
        if (!ReferenceEquals(input, x))
        {
            acts = acts.ToDictionary(kv => kv.Key, kv => kv.Value.to(x.dtype));
            atInput = atInput.ToDictionary(kv => kv.Key, kv => kv.Value.to(x.dtype));
        }
        var value = objective.Evaluate(new Features(acts, x, atInput, terms));
        value.backward();
        double v = value.to(ScalarType.Float64).item<double>();
        return (v, (x.grad ?? zeros_like(x)).detach().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The network on images resized to its input size as <c>classify</c> resizes them (bilinear,
    /// antialiased when shrinking; differentiable either way), as class scores need: classic graphs
    /// fix the classifier to that size, and to a batch of one, so ONNX graphs run a batch image by
    /// image. An attack on a photo at its own size goes through this resize, so that what it finds
    /// fools <c>classify</c> on the saved photo too.
    /// </summary>
    internal static IReadOnlyDictionary<string, Tensor> ForwardAtInputSize(INetwork net, Tensor images, IReadOnlyCollection<string> layers)
    {
        var x = images.shape[2] == net.Input.Height && images.shape[3] == net.Input.Width
            ? images : ImageIO.Resize(images, net.Input.Height, net.Input.Width);
        if (x.shape[0] == 1 || net is not OnnxNetwork) return Capture.Forward(net, x, layers);
        var parts = Enumerable.Range(0, (int)x.shape[0]).Select(i => Capture.Forward(net, x.narrow(0, i, 1), layers)).ToList();
        return layers.Distinct().ToDictionary(l => l, l => cat(parts.Select(p => p[l]).ToArray(), 0));
    }
}
