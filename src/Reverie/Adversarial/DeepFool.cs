using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>
/// DeepFool (Moosavi-Dezfooli et al. 2016), L2 or L∞, untargeted: at each step the network is taken as
/// linear around the image; among the classes that scored highest at the start, the one whose
/// linearized decision boundary is nearest is chosen, and the image moves onto that boundary; the
/// steps add up until the answer changes, and the total is stretched by (1 + overshoot) to cross
/// it. In L∞ (<see cref="AttackMethod.DeepFoolLinf"/>) the distance to a linearized boundary is
/// |f| / ‖w‖₁ and the step is along sign(w), as the paper's ℓ_p form gives for p = ∞. It looks for
/// the smallest change, so it has no budget; eps, when above 0, caps the result's norm as a safety net. Each image of a batch runs on its own. Not a gradient step on one
/// objective (it needs the gradients of several classes), so it keeps its own short loop.
/// </summary>
internal static class DeepFool
{
    /// <summary>How many of the top classes at the start are candidates (the paper's choice).</summary>
    public const int Candidates = 10;

    /// <summary>
    /// Attacks images [N,3,H,W] whose labels are <paramref name="labels"/>; progress counts iterations
    /// (of <see cref="AttackOptions.Steps"/> per image). With <paramref name="eightBit"/> it goes on
    /// until the image rounded to 8 bits a channel (as it will be saved) crosses the boundary: DeepFool
    /// stops just past it, and rounding alone can carry the image back.
    /// </summary>
    public static OptimizationResult Run(INetwork net, Tensor images, Tensor labels, AttackOptions o, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false)
    {
        var results = new List<Tensor>();
        int done = 0;
        bool cancelled = false;
        long n = images.shape[0];
        for (int i = 0; i < n && !cancelled; i++)
        {
            var (adv, steps, stop) = One(net, images.narrow(0, i, 1), (int)labels[i].item<long>(), o, eightBit, s =>
                progress?.Report(new OptimizationStep(i + 1, (int)n, s, o.Steps, 0, new Dictionary<string, double>()) { Done = i * o.Steps + s }), cancel);
            results.Add(adv);
            done += steps;
            cancelled = stop;
        }
        for (long i = results.Count; i < n; i++) results.Add(images.narrow(0, i, 1).detach().clone());
        return new OptimizationResult(cat(results.ToArray(), 0), done, cancelled, 0, new Dictionary<string, double>());
    }

    static (Tensor Image, int Steps, bool Cancelled) One(INetwork net, Tensor image, int label, AttackOptions o, bool eightBit, Action<int> report, CancellationToken cancel)
    {
        var x0 = image.detach().to(ScalarType.Float32);
        var total = zeros_like(x0);
        int[] candidates;
        using (no_grad())
        {
            var logits0 = Explaining.ClassScore.All(net, x0)[0];
            int k = (int)Math.Min(Candidates, logits0.shape[0]);
            candidates = logits0.topk(k).indexes.data<long>().Select(c => (int)c).Where(c => c != label).ToArray();
        }
        var x = x0.clone();
        bool linf = o.Method == AttackMethod.DeepFoolLinf;
        double overshoot = o.Overshoot;
        int step = 0;
        for (; step < o.Steps; step++)
        {
            if (cancel.IsCancellationRequested) return (x, step, true);
            using var scope = NewDisposeScope();
            var xi = x.clone().requires_grad_(true);
            var logits = Explaining.ClassScore.All(net, xi)[0];
            if (logits.argmax().item<long>() != label)
            {
                if (!eightBit || Crossed(net, x.mul(S(255)).round_().div_(S(255)), label)) break;
                // Across in floating point but not once rounded: stretch the total further past the boundary.
                overshoot = 2 * overshoot + 0.02;
                Place(x, x0, total, overshoot, o.Eps, linf);
                report(step + 1);
                continue;
            }
            // The gradient of the label's logit and of each candidate's, one backward pass each.
            var gLabel = autograd.grad([logits[label]], [xi], retain_graph: true)[0];
            double fLabel = logits[label].item<float>();
            double best = double.PositiveInfinity;
            Tensor? move = null;
            for (int j = 0; j < candidates.Length; j++)
            {
                var g = autograd.grad([logits[candidates[j]]], [xi], retain_graph: j < candidates.Length - 1)[0];
                var w = g - gLabel;
                double f = logits[candidates[j]].item<float>() - fLabel;
                // The distance to the linearized boundary in the attack's norm (the dual norm of w below it).
                double norm = (linf ? w.abs().sum() : w.norm()).item<float>() + 1e-12;
                double distance = Math.Abs(f) / norm;
                if (distance < best)
                {
                    best = distance;
                    move = linf
                        ? w.sign() * S((Math.Abs(f) + 1e-4) / norm)   // onto the boundary along the L∞-steepest direction
                        : w * S((Math.Abs(f) + 1e-4) / (norm * norm)); // onto the boundary along w
                }
            }
            if (move is null) break;
            using (no_grad()) total.add_(move.detach());
            Place(x, x0, total, overshoot, o.Eps, linf);
            report(step + 1);
        }
        return (x, step, false);
    }

    /// <summary>x = x0 + (1 + overshoot)·total, capped to norm eps (L2, or L∞) when eps is above 0, in 0..1.</summary>
    static void Place(Tensor x, Tensor x0, Tensor total, double overshoot, double eps, bool linf)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var r = total * S(1 + overshoot);
        if (eps > 0) r = linf ? r.clamp(S(-eps), S(eps)) : r * S(Math.Min(1.0, eps / (r.norm().item<float>() + 1e-12)));
        x.copy_((x0 + r).clamp(S(0), S(1)));
    }

    static bool Crossed(INetwork net, Tensor x, int label)
    {
        using var noGrad = no_grad();
        return Explaining.ClassScore.All(net, x)[0].argmax().item<long>() != label;
    }
}
