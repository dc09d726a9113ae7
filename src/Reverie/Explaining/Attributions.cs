using Reverie.Models;
using Reverie.Optimization;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Reverie.Explaining;

/// <summary>
/// An explanation method: how much each pixel of the network's input counts for one class's
/// score. The image is [1,3,H,W] in 0..1 at the network's input size; the map is [H,W] float32.
/// </summary>
internal interface IAttribution
{
    /// <summary>The method's name, as <c>--method</c> takes it.</summary>
    string Name { get; }
    /// <summary>The method's name for people (pictures, tables).</summary>
    string Title { get; }
    /// <summary>Whether the map has a sign (evidence for and against), or is a magnitude.</summary>
    bool Signed { get; }
    /// <summary>The map; <paramref name="progress"/> counts network passes done of <see cref="Passes"/>.</summary>
    Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default);
    /// <summary>How many forward/backward passes (or forward passes, for masks) the method makes.</summary>
    int Passes(long height, long width);
    /// <summary>What the picture shows of <paramref name="map"/> (all of it, unless the method picks the parts that matter).</summary>
    Tensor ForDisplay(Tensor map) => map;
}

/// <summary>
/// The score every method explains: the class's logit when the network has logits, else its
/// log-probability. Computed on images at the network's input size.
/// </summary>
internal static class ClassScore
{
    /// <summary>
    /// Images per pass for the methods that make many. Small on purpose: on BVLC GoogLeNet at 224 px
    /// a batch of 16 took 3.5 s for 16 gradients, 16 single passes 1.1 s and 4 batches of 4 0.7 s.
    /// Larger batches allocate activations above glibc's 32 MB mmap ceiling, which are mapped fresh
    /// and page-faulted on every pass (1.1 million minor faults in that measurement).
    /// </summary>
    public const int Batch = 4;

    /// <summary>The layer the score is read from, and whether that layer holds probabilities.</summary>
    public static (string Layer, bool Probabilities) Source(INetwork net)
    {
        string output = net.ResolveLayer(net.OutputLayer);
        if (net.LogitsLayer is { } l && net.ResolveLayer(l) != output) return (net.ResolveLayer(l), false);
        return (output, net.OutputIsProbability);
    }

    /// <summary>A layer's readable name (its canonical name in the layer table), for a tensor name.</summary>
    public static string Readable(INetwork net, string resolved) =>
        net.Layers.FirstOrDefault(l => l.Name == resolved || net.ResolveLayer(l.Name) == resolved)?.Name ?? resolved;

    /// <summary>The score [N] of class <paramref name="cls"/> for images [N,3,H,W], and the activations of <paramref name="layer"/> when asked.</summary>
    public static (Tensor Score, Tensor? Activations) Run(INetwork net, Tensor images, int cls, string? layer = null)
    {
        var (source, probabilities) = Source(net);
        var acts = Capture.Forward(net, images, layer is null || layer == source ? [source] : [source, layer]);
        var y = acts[source].flatten(1).to(ScalarType.Float32);
        if (probabilities) y = y.clamp_min(S(1e-30)).log();
        return (y.select(1, cls), layer is null ? null : acts[layer]);
    }

    /// <summary>Every class's score [N,K] for images of any size, resized to the input as <c>classify</c> resizes them (differentiable).</summary>
    public static Tensor All(INetwork net, Tensor images)
    {
        var (source, probabilities) = Source(net);
        var y = ImageOptimizer.ForwardAtInputSize(net, images, [source])[source].flatten(1).to(ScalarType.Float32);
        return probabilities ? y.clamp_min(S(1e-30)).log() : y;
    }

    /// <summary>The score's gradient with respect to images [N,3,H,W] (each image's own), and the scores.</summary>
    public static (Tensor Gradient, Tensor Score) Gradient(INetwork net, Tensor images, int cls)
    {
        var x = images.detach().requires_grad_(true);
        var (score, _) = Run(net, x, cls);
        var g = autograd.grad([score.sum()], [x])[0];
        return (g.detach(), score.detach());
    }
}

/// <summary>Simonyan et al. 2014: the largest absolute gradient over the colour channels.</summary>
internal sealed class Saliency : IAttribution
{
    public string Name => "saliency";
    public string Title => "Saliency (gradient)";
    public bool Signed => false;
    public int Passes(long height, long width) => 1;
    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        var (g, _) = ClassScore.Gradient(net, image, cls);
        progress?.Report(1);
        return g[0].abs().amax([0]);
    }
}

/// <summary>Gradient × input (Shrikumar et al. 2016), summed over the colour channels: signed.</summary>
internal sealed class GradientTimesInput : IAttribution
{
    public string Name => "gradxinput";
    public string Title => "Gradient x input";
    public bool Signed => true;
    public int Passes(long height, long width) => 1;
    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        var (g, _) = ClassScore.Gradient(net, image, cls);
        progress?.Report(1);
        return (g * image)[0].sum([0]);
    }
}

/// <summary>
/// SmoothGrad (Smilkov et al. 2017): the gradient averaged over copies of the image with Gaussian
/// noise of σ = <see cref="Noise"/> × the image's range, shown as saliency (largest absolute value
/// over channels). Seeded.
/// </summary>
internal sealed class SmoothGrad(int samples, double noise, int seed, int batch = ClassScore.Batch) : IAttribution
{
    public double Noise => noise;
    public string Name => "smoothgrad";
    public string Title => "SmoothGrad";
    public bool Signed => false;
    public int Passes(long height, long width) => samples;
    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        var gen = new Generator((ulong)seed, image.device);
        double sigma = noise * (image.max() - image.min()).item<float>();
        var sum = zeros_like(image[0]);
        for (int done = 0; done < samples;)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            int n = Math.Min(batch, samples - done);
            var x = image.expand(n, -1, -1, -1) + randn([n, 3, image.shape[2], image.shape[3]], generator: gen, device: image.device) * S(sigma);
            var (g, _) = ClassScore.Gradient(net, x, cls);
            sum.add_(g.sum([0]));
            done += n;
            progress?.Report(done);
        }
        return (sum / S(samples)).abs().amax([0]);
    }
}

/// <summary>What integrated gradients integrate from.</summary>
internal enum Baseline
{
    /// <summary>A black image.</summary>
    Black,
    /// <summary>The image blurred (Gaussian, σ = 1/10 of its side): no edges, same colours.</summary>
    Blur,
    /// <summary>Uniform noise (seeded).</summary>
    Noise,
}

/// <summary>
/// Integrated gradients (Sundararajan et al. 2017): (x − x′) times the score's gradient integrated
/// along the straight path from the baseline x′ to x. The attributions add up to
/// score(x) − score(x′) (completeness), which <see cref="Completeness"/> reports.
/// </summary>
/// <remarks>
/// The quadrature places the <see cref="Steps"/> gradient evaluations where the score changes: along
/// the path from a black image, GoogLeNet's logit for the photo's class rises from 0.2 to 5.9
/// between α = 0.016 and 0.031 and to 12.5 by α = 0.06, then drifts; a uniform rule puts one or two
/// of 64 points in that stretch and misses completeness by 9% (Riemann) or 11% (trapezoid) on
/// coffee.png. So the score is first probed at 17 points (forward passes only); [0,1] is cut into
/// 16 panels; each panel gets one Gauss–Legendre node, and the rest go to panels in proportion to
/// how much the score changes across them; each panel is integrated by Gauss–Legendre with its
/// nodes. Summed over colour channels: signed.
/// </remarks>
internal sealed class IntegratedGradients(int steps, Baseline baseline, int seed, int batch = ClassScore.Batch) : IAttribution
{
    const int Panels = 16;

    public int Steps => steps;
    public string Name => "ig";
    public string Title => $"Integrated gradients ({baseline.ToString().ToLowerInvariant()} baseline)";
    public bool Signed => true;
    public int Passes(long height, long width) => steps + Panels + 1;

    /// <summary>The last run's sum of attributions, and score(x) − score(baseline).</summary>
    public (double Sum, double Delta) Completeness { get; private set; }

    /// <summary>
    /// The quadrature's nodes and weights on [0,1] for <paramref name="n"/> evaluations, given the
    /// score at the panels' ends (<see cref="Panels"/> + 1 values).
    /// </summary>
    public static (double[] Nodes, double[] Weights) Rule(int n, IReadOnlyList<double> probe)
    {
        int panels = probe.Count - 1;
        if (n < panels) return GaussLegendre(n); // too few evaluations to give every panel one
        var change = Enumerable.Range(0, panels).Select(j => Math.Abs(probe[j + 1] - probe[j])).ToArray();
        double total = change.Sum();
        var counts = Enumerable.Repeat(1, panels).ToArray();
        int extra = n - panels;
        if (extra > 0)
        {
            // Largest remainders of the share of the change (uniform when the score does not move).
            var share = change.Select(c => total > 0 ? extra * c / total : (double)extra / panels).ToArray();
            for (int j = 0; j < panels; j++) counts[j] += (int)Math.Floor(share[j]);
            foreach (int j in Enumerable.Range(0, panels).OrderByDescending(j => share[j] - Math.Floor(share[j])).ThenBy(j => j).Take(n - counts.Sum()))
                counts[j]++;
        }
        var nodes = new List<double>();
        var weights = new List<double>();
        for (int j = 0; j < panels; j++)
        {
            var (t, w) = GaussLegendre(counts[j]);
            nodes.AddRange(t.Select(v => (j + v) / panels));
            weights.AddRange(w.Select(v => v / panels));
        }
        return ([.. nodes], [.. weights]);
    }

    /// <summary>The baseline for an image.</summary>
    public Tensor BaselineFor(Tensor image) => baseline switch
    {
        Baseline.Black => zeros_like(image),
        Baseline.Blur => Imaging.Filters.GaussianBlur(image, Math.Max(image.shape[2], image.shape[3]) / 10.0),
        _ => rand(image.shape, generator: new Generator((ulong)seed, image.device), device: image.device),
    };

    /// <summary>Gauss–Legendre nodes and weights on [0, 1] (Newton's method on the Legendre polynomial).</summary>
    public static (double[] Nodes, double[] Weights) GaussLegendre(int n)
    {
        var nodes = new double[n];
        var weights = new double[n];
        for (int i = 0; i < n; i++)
        {
            double x = Math.Cos(Math.PI * (i + 0.75) / (n + 0.5)), dp = 0;
            for (int iteration = 0; iteration < 100; iteration++)
            {
                double p0 = 1, p1 = x;
                for (int k = 2; k <= n; k++) (p0, p1) = (p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k);
                if (n == 1) p0 = 1;
                dp = n * (x * p1 - p0) / (x * x - 1);
                double dx = p1 / dp;
                x -= dx;
                if (Math.Abs(dx) < 1e-15) break;
            }
            nodes[i] = (1 - x) / 2;
            weights[i] = 1 / ((1 - x * x) * dp * dp);
        }
        return (nodes, weights);
    }

    /// <summary>The attributions per colour channel [3,H,W].</summary>
    public Tensor PerChannel(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        var x0 = BaselineFor(image);
        var delta = image - x0;
        var total = zeros_like(image[0]);
        double[] probe;
        using (no_grad())
        {
            var ends = Enumerable.Range(0, Panels + 1).Select(j => (float)j / Panels).ToArray();
            probe = new double[Panels + 1];
            for (int start = 0; start <= Panels; start += batch)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(batch, Panels + 1 - start);
                var alphas = tensor(ends.Skip(start).Take(n).ToArray(), device: image.device).reshape(-1, 1, 1, 1);
                var scores = ClassScore.Run(net, x0 + alphas * delta, cls).Score.cpu().data<float>().ToArray();
                for (int i = 0; i < n; i++) probe[start + i] = scores[i];
            }
        }
        progress?.Report(Panels + 1);
        var (nodes, weights) = Rule(steps, probe);
        for (int start = 0; start < steps;)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            int n = Math.Min(batch, steps - start);
            var alphas = tensor(nodes.Skip(start).Take(n).Select(v => (float)v).ToArray(), device: image.device);
            var w = tensor(weights.Skip(start).Take(n).Select(v => (float)v).ToArray(), device: image.device);
            var path = x0 + alphas.reshape(-1, 1, 1, 1) * delta;
            var (g, _) = ClassScore.Gradient(net, path, cls);
            total.add_((g * w.reshape(-1, 1, 1, 1)).sum([0]));
            start += n;
            progress?.Report(Panels + 1 + start);
        }
        var attributions = delta[0] * total;
        Completeness = (attributions.sum().item<float>(), probe[Panels] - probe[0]);
        return attributions;
    }

    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default) =>
        PerChannel(net, image, cls, progress, cancel).sum([0]);
}

/// <summary>
/// Grad-CAM (Selvaraju et al. 2017) at a spatial layer: each channel weighted by the mean gradient
/// of the score over its positions, summed, ReLU, upsampled (bilinear) to the image.
/// With <c>plusPlus</c>, Grad-CAM++ (Chattopadhay et al. 2018): per-position weights
/// g² / (2g² + Σ A·g³), applied to the positive gradients, as the paper derives for an exponential of the score.
/// </summary>
internal sealed class GradCam(string layer, bool plusPlus = false, string? layerName = null) : IAttribution
{
    /// <summary>The layer as people name it.</summary>
    public string Layer => layerName ?? layer;
    public string Name => plusPlus ? "gradcam++" : "gradcam";
    public string Title => (plusPlus ? "Grad-CAM++ at " : "Grad-CAM at ") + Layer;
    public bool Signed => false;
    public int Passes(long height, long width) => 1;

    /// <summary>The map at the layer's own resolution [h,w], before upsampling.</summary>
    public Tensor Coarse(INetwork net, Tensor image, int cls)
    {
        // The input must take part in autograd for the layer's activations to have a graph (the weights are frozen).
        var (score, acts) = ClassScore.Run(net, image.detach().requires_grad_(true), cls, layer);
        var a = acts!;
        if (a.dim() != 4 || a.shape[2] * a.shape[3] < 2)
            throw new BadInputException($"Grad-CAM needs a layer with a spatial extent; '{layer}' has shape [{string.Join(",", a.shape)}]. Pick a convolutional layer (the last one is the usual choice).");
        var g = autograd.grad([score.sum()], [a])[0].to(ScalarType.Float32);
        var av = a.detach().to(ScalarType.Float32);
        Tensor weights;
        if (!plusPlus) weights = g.mean([2, 3], keepdim: true);
        else
        {
            var g2 = g.square();
            var g3 = g2 * g;
            var sumA = av.sum([2, 3], keepdim: true);
            var denominator = S(2) * g2 + sumA * g3;
            var alpha = g2 / where(denominator != S(0), denominator, ones_like(denominator));
            weights = (alpha * F.relu(g)).sum([2, 3], keepdim: true);
        }
        return F.relu((weights * av).sum(1))[0];
    }

    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        var coarse = Coarse(net, image, cls);
        progress?.Report(1);
        return F.interpolate(coarse[TensorIndex.None, TensorIndex.None], [image.shape[2], image.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false)[0, 0];
    }
}

/// <summary>
/// Occlusion (Zeiler and Fergus 2014): a gray square of <see cref="Window"/> pixels slid over the
/// image with <see cref="Stride"/>; each pixel's value is the mean drop of the score over the
/// windows that covered it. Signed (a rise is negative evidence). Forward passes only, batched.
/// </summary>
internal sealed class Occlusion(int window, int stride, int batch = ClassScore.Batch) : IAttribution
{
    public int Window => window;
    public int Stride => stride;
    public string Name => "occlusion";
    public string Title => $"Occlusion ({window} px window, stride {stride})";
    public bool Signed => true;

    static IEnumerable<long> Starts(long size, int window, int stride)
    {
        for (long s = 0; s + window < size; s += stride) yield return s;
        yield return size - window; // the last window touches the border
    }

    public int Passes(long height, long width) => Starts(height, window, stride).Distinct().Count() * Starts(width, window, stride).Distinct().Count();

    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        long h = image.shape[2], w = image.shape[3];
        if (window > h || window > w) throw new BadInputException($"The occlusion window ({window} px) is larger than the image the network sees ({w}x{h}); use a smaller --window.");
        var positions = (from y in Starts(h, window, stride).Distinct() from x in Starts(w, window, stride).Distinct() select (y, x)).ToList();
        double clean;
        using (no_grad()) clean = ClassScore.Run(net, image, cls).Score[0].item<float>();
        var drop = zeros(h, w, device: image.device);
        var count = zeros(h, w, device: image.device);
        using var noGrad = no_grad();
        for (int start = 0; start < positions.Count;)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            int n = Math.Min(batch, positions.Count - start);
            var x = image.expand(n, -1, -1, -1).clone();
            for (int i = 0; i < n; i++)
            {
                var (py, px) = positions[start + i];
                x[i].narrow(1, py, window).narrow(2, px, window).fill_(S(0.5));
            }
            var scores = ClassScore.Run(net, x, cls).Score.cpu().data<float>().ToArray();
            for (int i = 0; i < n; i++)
            {
                var (py, px) = positions[start + i];
                drop.narrow(0, py, window).narrow(1, px, window).add_(S(clean - scores[i]));
                count.narrow(0, py, window).narrow(1, px, window).add_(S(1));
            }
            start += n;
            progress?.Report(start);
        }
        return drop / count.clamp_min(S(1));
    }
}
