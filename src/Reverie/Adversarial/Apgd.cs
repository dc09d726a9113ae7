using Reverie.Models;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>
/// Auto-PGD, L∞ or L2 (Croce and Hein 2020, "Reliable evaluation of adversarial robustness with an
/// ensemble of diverse parameter-free attacks"): signed (L2: unit-norm) gradient steps with momentum (α = 0.75,
/// none on the first step), a step size that starts at 2·eps and is halved, per image, at
/// checkpoints w_j (p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) of the
/// iterations) when the loss rose in fewer than ρ = 75% of the steps since the last checkpoint, or
/// when neither the step size nor the best loss changed between the last two checkpoints; each
/// halving restarts the image from the highest-loss point found. The loss is the cross-entropy
/// (APGD-CE) or the Difference of Logits Ratio (APGD-DLR), which does not depend on the scale of
/// the logits:
/// −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3), targeted −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2), π the
/// classes sorted by logit. The log-probabilities serve as logits (DLR is unchanged by a shift).
/// An image counts as fooled as soon as any iterate fools it, and takes no further steps; the
/// result holds that iterate, or the highest-loss point for images never fooled. Its own loop: the per-image step sizes and
/// rollbacks need the per-image losses, which the engine's step rules do not see.
/// </summary>
internal static class Apgd
{
    /// <summary>The momentum weight α.</summary>
    public const double Alpha = 0.75;
    /// <summary>The share ρ of steps since the last checkpoint that must raise the loss for the step size to stay.</summary>
    public const double Rho = 0.75;

    /// <summary>The checkpoints (iteration indices, ascending, all below <paramref name="steps"/>) at which the step size may be halved.</summary>
    public static List<int> Checkpoints(int steps)
    {
        var w = new List<int>();
        double previous = 0, p = 0.22;
        while (true)
        {
            int at = (int)Math.Ceiling(p * steps - 1e-9); // 0.22·100 is 22, not 22.000000000000004
            if (at >= steps) break;
            if (w.Count == 0 || at > w[^1]) w.Add(at);
            double next = p + Math.Max(p - previous - 0.03, 0.06);
            previous = p;
            p = next;
        }
        return w;
    }

    /// <summary>
    /// Per-image losses [N] (to be raised) of log-probabilities [N,K]: cross-entropy, or DLR; with
    /// <paramref name="targets"/> the targeted form (the target's log-probability for CE).
    /// </summary>
    public static Tensor Loss(Tensor logProbabilities, Tensor labels, Tensor? targets, bool dlr)
    {
        var z = logProbabilities;
        var own = z.gather(1, labels.unsqueeze(1)).squeeze(1);
        if (!dlr) return targets is null ? -own : z.gather(1, targets.unsqueeze(1)).squeeze(1);
        var sorted = z.sort(1, descending: true).Values;
        if (targets is null)
        {
            var others = z.scatter(1, labels.unsqueeze(1), full_like(own.unsqueeze(1), S(float.NegativeInfinity))).amax([1]);
            return -(own - others) / (sorted.select(1, 0) - sorted.select(1, 2) + S(1e-12));
        }
        var target = z.gather(1, targets.unsqueeze(1)).squeeze(1);
        return -(own - target) / (sorted.select(1, 0) - (sorted.select(1, 2) + sorted.select(1, 3)) * S(0.5) + S(1e-12));
    }

    /// <summary>
    /// Attacks images [N,3,H,W] (0..1) with labels [N] through <paramref name="logProbabilities"/> (images →
    /// log-probabilities [N,K], differentiable); <paramref name="targets"/> [N] makes it targeted. Terms:
    /// "fooled" (the fraction). With <paramref name="eightBit"/>, fooling is judged on the image rounded to 8
    /// bits a channel, as it will be saved.
    /// </summary>
    public static OptimizationResult Run(Func<Tensor, Tensor> logProbabilities, Tensor images, Tensor labels, Tensor? targets, bool dlr, double eps, int steps, int seed,
        bool randomStart, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false, bool l2 = false)
    {
        var x0 = images.detach().to(ScalarType.Float32);
        long n = x0.shape[0];
        var y = labels.to(ScalarType.Int64).to(x0.device);
        var t = targets?.to(ScalarType.Int64).to(x0.device);
        int classes;
        using (no_grad()) classes = (int)logProbabilities(x0.narrow(0, 0, 1)).shape[1];
        if (dlr && classes < (t is null ? 3 : 4))
            throw new BadInputException($"The DLR loss needs at least {(t is null ? 3 : 4)} classes; the model has {classes}.");

        // The loss, its gradient and whether the model is fooled, for images x with labels ys (targets ts).
        (Tensor Loss, Tensor Grad, Tensor Fooled) Evaluate(Tensor x, Tensor ys, Tensor? ts)
        {
            using var scope = NewDisposeScope();
            using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the pass
            using var withGrad = enable_grad();
            var xi = x.detach().requires_grad_(true);
            var lp = logProbabilities(xi);
            var loss = Loss(lp, ys, ts, dlr);
            var grad = autograd.grad([loss.sum()], [xi])[0];
            Tensor fooled;
            using (no_grad())
            {
                var judged = eightBit ? logProbabilities(x.mul(S(255)).round_().div_(S(255))) : lp.detach();
                var pred = judged.argmax(1);
                fooled = ts is null ? pred.ne(ys) : pred.eq(ts);
            }
            return (loss.detach().MoveToOuterDisposeScope(), grad.MoveToOuterDisposeScope(), fooled.MoveToOuterDisposeScope());
        }
        static Tensor Rows(Tensor mask) => mask.view(-1, 1, 1, 1);

        using var noGrad = no_grad();
        var x = x0.clone();
        if (randomStart && eps > 0)
            x = BallParameterization.Project(x0 + (rand(x0.shape, generator: new Generator((ulong)seed)).to(x0.device) * S(2) - S(1)) * S(eps), x0, eps, l2);
        var (f, g, fooled) = Evaluate(x, y, t);
        var adversarial = x.clone();                           // the iterate that first fooled each image
        var everFooled = fooled.clone();
        var bestLoss = f.clone();
        var xMax = x.clone();
        var gMax = g.clone();
        var eta = full([n], S(2 * eps), device: x0.device);
        var increases = zeros([n], device: x0.device);
        var bestAtCheck = bestLoss.clone();
        var reducedAtCheck = zeros([n], ScalarType.Bool, device: x0.device);
        var checkpoints = Checkpoints(steps);
        int lastCheck = 0, done = 0;
        bool cancelled = false;
        var xPrev = x.clone();
        for (int k = 0; k < steps && eps > 0; k++)
        {
            if (cancel.IsCancellationRequested) { cancelled = true; break; }
            using var scope = NewDisposeScope();
            // Only the images not fooled yet take the step (an image is done once fooled).
            var active = everFooled.logical_not().nonzero().flatten();
            if (active.numel() == 0) break;
            Tensor Take(Tensor all) => all.index_select(0, active);
            var xa = Take(x);
            var ga = Take(g);
            var x0a = Take(x0);
            double a = k == 0 ? 1 : Alpha;
            // L∞: the signed gradient; L2: the gradient of unit L2 norm per image.
            var direction = l2 ? ga / (ga.flatten(1).norm(1).view(-1, 1, 1, 1) + S(1e-12)) : ga.sign();
            var z = BallParameterization.Project(xa + Take(eta).view(-1, 1, 1, 1) * direction, x0a, eps, l2);
            var next = BallParameterization.Project(xa + (z - xa) * S(a) + (xa - Take(xPrev)) * S(1 - a), x0a, eps, l2);
            xPrev.index_copy_(0, active, xa);
            x.index_copy_(0, active, next);
            var (f2, g2, fooled2) = Evaluate(next, Take(y), t is null ? null : Take(t));
            adversarial.index_copy_(0, active, where(Rows(fooled2), next, Take(adversarial)));
            everFooled.index_copy_(0, active, fooled2);
            increases.index_copy_(0, active, Take(increases) + f2.gt(Take(f)).to(ScalarType.Float32));
            var better = f2.gt(Take(bestLoss));
            xMax.index_copy_(0, active, where(Rows(better), next, Take(xMax)));
            gMax.index_copy_(0, active, where(Rows(better), g2, Take(gMax)));
            bestLoss.index_copy_(0, active, where(better, f2, Take(bestLoss)));
            f.index_copy_(0, active, f2);
            g.index_copy_(0, active, g2);
            done = k + 1;
            if (checkpoints.Contains(k + 1))
            {
                int span = k + 1 - lastCheck;
                var oscillating = increases.lt(S(Rho * span));
                var stalled = reducedAtCheck.logical_not() & bestAtCheck.ge(bestLoss);
                var halve = oscillating | stalled;
                eta.copy_(where(halve, eta * S(0.5), eta));
                x.copy_(where(Rows(halve), xMax, x));
                g.copy_(where(Rows(halve), gMax, g));
                reducedAtCheck.copy_(halve);
                bestAtCheck.copy_(bestLoss);
                increases.zero_();
                lastCheck = k + 1;
            }
            double fraction = everFooled.to(ScalarType.Float32).mean().item<float>();
            progress?.Report(new OptimizationStep(0, 1, k + 1, steps, bestLoss.mean().item<float>(), new Dictionary<string, double> { ["fooled"] = fraction })
            { Done = k + 1, Total = steps, Image = () => where(Rows(everFooled), adversarial, xMax) });
        }
        var result = where(Rows(everFooled), adversarial, xMax);
        var terms = new Dictionary<string, double> { ["fooled"] = everFooled.to(ScalarType.Float32).mean().item<float>() };
        return new OptimizationResult(result, done, cancelled, bestLoss.mean().item<float>(), terms);
    }
}
