using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>
/// The Square Attack, L∞ (Andriushchenko, Croce, Flammarion and Hein, 2020): a score-based black box.
/// It starts from vertical stripes of ±eps, then each query changes one random square window, every
/// channel of it set to the photo ± eps (one sign for all channels of a gray image), and keeps the change when the margin between the true class
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
        Tensor Margin(Tensor x, Tensor labels) => CarliniWagner.Margin(scores(x), labels, o.Target);
        var queries = new int[n];
        // A gray image given as three equal channels (as data sets give them to colour networks) stays gray:
        // one sign per pixel for all channels, or a network that averages the channels would see ±eps/3.
        long signed = Attack.IsGray(x0) ? 1 : c;
        // Vertical stripes: each column of each channel at +eps or −eps.
        var stripes = (randint(0, 2, [n, signed, 1, w], generator: gen).to(ScalarType.Float32) * S(2) - S(1)).to(x0.device).expand(n, c, 1, w);
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
            // One window per open image, all at once: a mask [m,1,H,W] from each window's corner.
            int m0 = open.Length;
            var rows = tensor(open.Select(i => (long)i).ToArray(), device: x0.device);
            var tops = tensor(open.Select(_ => (long)rng.Next((int)(h - s + 1))).ToArray(), device: x0.device).unsqueeze(1);
            var lefts = tensor(open.Select(_ => (long)rng.Next((int)(w - s + 1))).ToArray(), device: x0.device).unsqueeze(1);
            var ys = arange(S(h), device: x0.device).unsqueeze(0);
            var xs = arange(S(w), device: x0.device).unsqueeze(0);
            var inRows = ys.ge(tops) & ys.lt(tops + S(s));
            var inCols = xs.ge(lefts) & xs.lt(lefts + S(s));
            var window = (inRows.unsqueeze(2) & inCols.unsqueeze(1)).unsqueeze(1);
            var current = best.index_select(0, rows);
            var start = x0.index_select(0, rows);
            // A new ±eps per channel; drawn again (a few times at most) for the images whose window would not change.
            Tensor Signs() => tensor(Enumerable.Range(0, m0 * (int)signed).Select(_ => rng.Next(2) == 0 ? -1f : 1f).ToArray(), device: x0.device).reshape(m0, signed, 1, 1).expand(m0, c, 1, 1);
            var signs = Signs();
            Tensor proposal = current;
            for (int tries = 0; tries < 10; tries++)
            {
                proposal = where(window, (start + S(eps) * signs).clamp(S(0), S(1)), current);
                var same = proposal.sub(current).abs().amax([1, 2, 3]).le(S(1e-7f));
                if (tries == 9 || !same.any().item<bool>()) break;
                signs = where(same.view(-1, 1, 1, 1), Signs(), signs);
            }
            var batch = Ball(proposal, start);
            var m = Margin(batch, y.index_select(0, rows)).cpu().data<float>().ToArray();
            var kept = new List<long>();
            for (int k = 0; k < open.Length; k++)
            {
                int i = open[k];
                queries[i]++;
                if (m[k] < margin[i]) { margin[i] = m[k]; kept.Add(k); }
            }
            if (kept.Count > 0)
            {
                var picked = tensor(kept.ToArray(), device: x0.device);
                best.index_copy_(0, rows.index_select(0, picked), batch.index_select(0, picked));
            }
            int step = it;
            progress?.Report(new OptimizationStep(0, 1, step, budget, margin.Average(), new Dictionary<string, double> { ["fooled"] = margin.Count(v => v < 0) / (double)n })
            { Done = step, Total = budget, Image = () => best });
        }
        var terms = new Dictionary<string, double> { ["queries"] = queries.Average(), ["fooled"] = margin.Count(v => v < 0) / (double)n };
        return new OptimizationResult(best, it, cancelled, margin.Average(), terms);
    }
}
