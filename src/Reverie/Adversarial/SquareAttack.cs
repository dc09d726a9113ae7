using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>
/// The Square Attack, L∞ (Andriushchenko, Croce, Flammarion and Hein, 2020): a score-based black box.
/// It starts from vertical stripes of ±eps, then each query changes one random square window, every
/// channel of it set to the photo ± eps, and keeps the change when the margin between the true class
/// and the best other one falls (targeted: between the best other class and the target). The window's
/// share of the image starts at <see cref="PInit"/> and is halved on the paper's schedule. It reads
/// only the model's log-probabilities, through <c>scores</c>, never a gradient; an image stops being
/// queried once it is fooled. Its own loop: a random search, not a gradient step.
/// </summary>
internal static class SquareAttack
{
    /// <summary>The first window's share of the image's pixels (the paper's 0.05 for ImageNet L∞; 0.8 for small images).</summary>
    public static double PInit(long h, long w) => h * w <= 32 * 32 ? 0.8 : 0.05;

    /// <summary>The window's share after <paramref name="it"/> of <paramref name="budget"/> queries (the paper's halving points, per 10,000).</summary>
    public static double P(double pInit, int it, int budget)
    {
        int k = (int)((long)it * 10_000 / Math.Max(budget, 1));
        int halvings = k switch { <= 10 => 0, <= 50 => 1, <= 200 => 2, <= 500 => 3, <= 1000 => 4, <= 2000 => 5, <= 4000 => 6, <= 6000 => 7, <= 8000 => 8, _ => 9 };
        return pInit / (1 << halvings);
    }

    /// <summary>
    /// Attacks images [N,3,H,W] (0..1) with labels [N] through <paramref name="scores"/> (images → log-probabilities
    /// [N,K]); at most <see cref="AttackOptions.Steps"/> queries per image. The result's terms hold "queries" (mean
    /// per image) and "fooled" (the fraction). With <paramref name="eightBit"/> every queried image is first rounded
    /// to 8 bits a channel, as it will be saved.
    /// </summary>
    public static OptimizationResult Run(Func<Tensor, Tensor> scores, Tensor images, Tensor labels, AttackOptions o, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false)
    {
        using var noGrad = no_grad();
        var x0 = images.detach().to(ScalarType.Float32);
        long n = x0.shape[0], c = x0.shape[1], h = x0.shape[2], w = x0.shape[3];
        var y = labels.to(ScalarType.Int64).to(x0.device);
        var rng = new Random(o.Seed);
        var gen = new Generator((ulong)o.Seed);
        double eps = o.Eps;
        int budget = o.Steps;
        Tensor Round(Tensor x) => eightBit ? x.mul(S(255)).round_().div_(S(255)) : x;
        Tensor Ball(Tensor x, Tensor start) => Round(Attack.Project(x, start, eps));
        // How far images are from fooling the model: below 0 when they do.
        Tensor Margin(Tensor x, Tensor labels)
        {
            var lp = scores(x);
            var mask = nn.functional.one_hot(o.Target is { } t ? full_like(labels, S(t)) : labels, lp.shape[1]).to(ScalarType.Bool);
            var own = lp.masked_select(mask).reshape(-1);
            var other = lp.masked_fill(mask, S(float.NegativeInfinity)).amax([1]);
            return o.Target is null ? own - other : other - own;
        }
        var queries = new int[n];
        // Vertical stripes: each column of each channel at +eps or −eps.
        var stripes = (randint(0, 2, [n, c, 1, w], generator: gen).to(ScalarType.Float32) * S(2) - S(1)).to(x0.device);
        var best = Ball(x0 + S(eps) * stripes, x0);
        var margin = Margin(best, y).cpu().data<float>().ToArray();
        for (int i = 0; i < n; i++) queries[i] = 1;
        int it = 1;
        bool cancelled = false;
        for (; it < budget && eps > 0; it++)
        {
            if (cancel.IsCancellationRequested) { cancelled = true; break; }
            var open = Enumerable.Range(0, (int)n).Where(i => margin[i] >= 0).ToArray();
            if (open.Length == 0) break;
            using var scope = NewDisposeScope();
            using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the query
            double p = P(PInit(h, w), it, budget);
            int s = (int)Math.Clamp(Math.Round(Math.Sqrt(p * h * w)), 1, Math.Min(h, w) - 1);
            var candidates = new List<Tensor>();
            foreach (int i in open)
            {
                var cand = best[i].clone();
                int top = rng.Next((int)(h - s + 1)), left = rng.Next((int)(w - s + 1));
                var window = cand.narrow(1, top, s).narrow(2, left, s);
                var start = x0[i].narrow(1, top, s).narrow(2, left, s);
                // A new ±eps per channel; drawn again (a few times at most) when the window would not change.
                for (int tries = 0; tries < 10; tries++)
                {
                    var signs = tensor(Enumerable.Range(0, (int)c).Select(_ => rng.Next(2) == 0 ? -1f : 1f).ToArray(), device: x0.device).reshape(c, 1, 1);
                    var proposal = (start + S(eps) * signs).clamp(S(0), S(1));
                    if (tries == 9 || proposal.sub(window).abs().max().item<float>() > 1e-7f) { window.copy_(proposal); break; }
                }
                candidates.Add(cand.unsqueeze(0));
            }
            var rows = tensor(open.Select(i => (long)i).ToArray(), device: x0.device);
            var batch = Ball(cat(candidates, 0), x0.index_select(0, rows));
            var m = Margin(batch, y.index_select(0, rows)).cpu().data<float>().ToArray();
            for (int k = 0; k < open.Length; k++)
            {
                int i = open[k];
                queries[i]++;
                if (m[k] < margin[i]) { margin[i] = m[k]; best[i].copy_(batch[k]); }
            }
            int step = it;
            progress?.Report(new OptimizationStep(0, 1, step, budget, margin.Average(), new Dictionary<string, double> { ["fooled"] = margin.Count(v => v < 0) / (double)n })
            { Done = step, Total = budget, Image = () => best });
        }
        var terms = new Dictionary<string, double> { ["queries"] = queries.Average(), ["fooled"] = margin.Count(v => v < 0) / (double)n };
        return new OptimizationResult(best, it, cancelled, margin.Average(), terms);
    }
}
