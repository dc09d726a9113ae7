using Reverie.Imaging;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Explaining;

/// <summary>
/// LIME for images (Ribeiro et al. 2016, "Why should I trust you?"): the photo cut into SLIC
/// superpixels; seeded samples that hide a random half of them (each hidden superpixel filled with
/// its mean colour, as LIME does by default, or with mid-gray: LIME's <c>hide_color</c>); the class's probability on every sample; a ridge regression (α = 1, with an
/// intercept) weighted by an exponential kernel (width 0.25) on the cosine distance to the whole
/// photo. The map holds each superpixel's coefficient; the picture shows the
/// <paramref name="features"/> superpixels with the largest positive coefficients. The first sample
/// is the whole photo. Forward passes only, batched. It explains the probability, as LIME does,
/// where the gradient methods explain the logit.
/// </summary>
internal sealed class Lime(int superpixels, int samples, int features, int seed, bool gray = false, int batch = ClassScore.Batch) : IAttribution
{
    /// <summary>The kernel width on cosine distance (LIME's image default).</summary>
    public const double KernelWidth = 0.25;
    /// <summary>The ridge penalty (LIME's default regressor).</summary>
    public const double Alpha = 1.0;

    public string Name => "lime";
    public string Title => $"LIME ({(Segments > 0 ? Segments : superpixels)} superpixels, {samples} samples, top {features}{(gray ? ", gray fill" : "")})";
    public bool Signed => true;
    public int Passes(long height, long width) => samples;

    /// <summary>How many superpixels the photo was cut into (after the last <see cref="Explain"/>).</summary>
    public int Segments { get; private set; }
    /// <summary>The superpixel of every pixel, row-major (after the last <see cref="Explain"/>).</summary>
    public int[] Labels { get; private set; } = [];
    /// <summary>The coefficient of every superpixel and the intercept (after the last <see cref="Explain"/>).</summary>
    public (double[] Coefficients, double Intercept) Model { get; private set; } = ([], 0);
    /// <summary>The weighted R² of the linear model on the samples: how well it stands for the network near this photo.</summary>
    public double Fit { get; private set; }

    public Tensor Explain(INetwork net, Tensor image, int cls, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        long h = image.shape[2], w = image.shape[3];
        var (labels, k) = Superpixels.Slic(image, superpixels);
        Labels = labels; Segments = k;
        var segments = tensor(labels, [h, w], device: image.device).to(ScalarType.Int64);
        // Each superpixel's mean colour, or mid-gray: what a hidden superpixel shows. The mean hides
        // texture but not colour: a flat-coloured superpixel, filled with its own mean, does not change.
        var flat = image[0].reshape(3, -1);
        var sums = zeros(3, k, device: image.device).index_add_(1, segments.flatten(), flat, S(1));
        var counts = zeros(k, device: image.device).index_add_(0, segments.flatten(), ones(h * w, device: image.device), S(1));
        var fill = gray ? full_like(image, S(0.5f))
            : (sums / counts.clamp_min(S(1))).index_select(1, segments.flatten()).reshape(1, 3, h, w);

        var rng = new Random(seed);
        var z = new double[samples, k];
        for (int i = 0; i < samples; i++)
            for (int j = 0; j < k; j++) z[i, j] = i == 0 ? 1 : rng.Next(2);
        var y = new double[samples];
        using (no_grad())
            for (int start = 0; start < samples;)
            {
                cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                int n = Math.Min(batch, samples - start);
                var on = new float[n * k];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < k; j++) on[i * k + j] = (float)z[start + i, j];
                var keep = tensor(on, [n, k], device: image.device).index_select(1, segments.flatten()).reshape(n, 1, h, w);
                var x = image * keep + fill * (S(1) - keep);
                var p = net.Probabilities(x).select(1, cls).to(ScalarType.Float64).cpu().data<double>().ToArray();
                for (int i = 0; i < n; i++) y[start + i] = p[i];
                start += n;
                progress?.Report(start);
            }
        var weights = new double[samples];
        for (int i = 0; i < samples; i++)
        {
            double active = 0;
            for (int j = 0; j < k; j++) active += z[i, j];
            double d = active == 0 ? 1 : 1 - active / (Math.Sqrt(active) * Math.Sqrt(k));
            weights[i] = Math.Sqrt(Math.Exp(-d * d / (KernelWidth * KernelWidth)));
        }
        var (coef, intercept, r2) = WeightedRidge(z, y, weights, Alpha);
        Model = (coef, intercept);
        Fit = r2;
        var perSegment = tensor(coef.Select(c => (float)c).ToArray(), device: image.device);
        return perSegment.index_select(0, segments.flatten()).reshape(h, w);
    }

    /// <summary>The map with only the <c>features</c> superpixels of largest positive coefficient, for the picture.</summary>
    public Tensor ForDisplay(Tensor map)
    {
        var (coef, _) = Model;
        var shown = coef.Select((c, j) => (c, j)).Where(t => t.c > 0).OrderByDescending(t => t.c).Take(features).Select(t => t.j).ToHashSet();
        var keep = Labels.Select(l => shown.Contains(l) ? 1f : 0f).ToArray();
        return map * tensor(keep, map.shape, device: map.device);
    }

    /// <summary>
    /// Ridge regression with an unpenalized intercept and sample weights (the weighted means are
    /// taken out first): minimizes Σ wᵢ (yᵢ − b − xᵢ·β)² + α |β|². Returns β, b and the weighted R².
    /// </summary>
    internal static (double[] Coefficients, double Intercept, double R2) WeightedRidge(double[,] x, double[] y, double[] weights, double alpha)
    {
        int n = y.Length, k = x.GetLength(1);
        double wsum = weights.Sum();
        var mx = new double[k];
        double my = 0;
        for (int i = 0; i < n; i++)
        {
            my += weights[i] * y[i];
            for (int j = 0; j < k; j++) mx[j] += weights[i] * x[i, j];
        }
        my /= wsum;
        for (int j = 0; j < k; j++) mx[j] /= wsum;
        var a = new double[k, k];
        var rhs = new double[k];
        for (int i = 0; i < n; i++)
        {
            double wi = weights[i], yi = y[i] - my;
            for (int p = 0; p < k; p++)
            {
                double xp = x[i, p] - mx[p];
                rhs[p] += wi * xp * yi;
                for (int q = p; q < k; q++) a[p, q] += wi * xp * (x[i, q] - mx[q]);
            }
        }
        for (int p = 0; p < k; p++)
        {
            a[p, p] += alpha;
            for (int q = 0; q < p; q++) a[p, q] = a[q, p];
        }
        var beta = SolveSymmetric(a, rhs);
        double b = my;
        for (int j = 0; j < k; j++) b -= beta[j] * mx[j];
        double ssr = 0, sst = 0;
        for (int i = 0; i < n; i++)
        {
            double fit = b;
            for (int j = 0; j < k; j++) fit += beta[j] * x[i, j];
            ssr += weights[i] * (y[i] - fit) * (y[i] - fit);
            sst += weights[i] * (y[i] - my) * (y[i] - my);
        }
        return (beta, b, sst > 0 ? 1 - ssr / sst : 1);
    }

    /// <summary>Solves A x = b for a symmetric positive definite A by Cholesky.</summary>
    static double[] SolveSymmetric(double[,] a, double[] b)
    {
        int k = b.Length;
        var l = new double[k, k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = a[i, j];
                for (int m = 0; m < j; m++) s -= l[i, m] * l[j, m];
                l[i, j] = i == j ? Math.Sqrt(Math.Max(s, 1e-300)) : s / l[j, j];
            }
        var t = new double[k];
        for (int i = 0; i < k; i++)
        {
            double s = b[i];
            for (int m = 0; m < i; m++) s -= l[i, m] * t[m];
            t[i] = s / l[i, i];
        }
        var x = new double[k];
        for (int i = k - 1; i >= 0; i--)
        {
            double s = t[i];
            for (int m = i + 1; m < k; m++) s -= l[m, i] * x[m];
            x[i] = s / l[i, i];
        }
        return x;
    }
}
