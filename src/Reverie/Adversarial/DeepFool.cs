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
    /// Attacks images [N,3,H,W] whose labels are <paramref name="labels"/>, all at once: each step takes the gradients of
    /// the label's logit and of each candidate's for every open image in one backward pass per class (the images are
    /// independent, the network is in evaluation mode), and an image leaves the batch when its answer has changed.
    /// Progress counts steps (of <see cref="AttackOptions.Steps"/>). With <paramref name="eightBit"/> an image goes on
    /// until it crosses the boundary rounded to 8 bits a channel (as it will be saved): DeepFool stops just past it, and
    /// rounding alone can carry the image back.
    /// </summary>
    public static OptimizationResult Run(INetwork net, Tensor images, Tensor labels, AttackOptions o, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false)
    {
        var x0 = images.detach().to(ScalarType.Float32);
        long n = x0.shape[0];
        var y = labels.to(ScalarType.Int64).to(x0.device);
        Tensor candidates; // [N, K-1]: the top classes at the start but the label
        using (no_grad())
        {
            var logits0 = Explaining.ClassScore.All(net, x0);
            int k = (int)Math.Min(Candidates, logits0.shape[1]);
            var own = nn.functional.one_hot(y, logits0.shape[1]).to(ScalarType.Bool);
            candidates = logits0.masked_fill(own, S(float.NegativeInfinity)).topk(k - 1, 1).indexes;
        }
        var x = x0.clone();
        var total = zeros_like(x0);
        bool linf = o.Method == AttackMethod.DeepFoolLinf;
        var overshoot = Enumerable.Repeat(o.Overshoot, (int)n).ToArray();
        var open = Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray();
        int step = 0, done = 0;
        bool cancelled = false;
        for (; step < o.Steps && open.Length > 0; step++)
        {
            if (cancel.IsCancellationRequested) { cancelled = true; break; }
            using var scope = NewDisposeScope();
            using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the step
            var rows = tensor(open, device: x0.device);
            var xi = x.index_select(0, rows).requires_grad_(true);
            var logits = Explaining.ClassScore.All(net, xi);
            var yi = y.index_select(0, rows);
            var across = logits.argmax(1).ne(yi).cpu().data<bool>().ToArray();
            var stretched = new HashSet<int>();
            if (eightBit && across.Any(a => a))
            {
                bool[] rounded;
                using (no_grad())
                    rounded = Explaining.ClassScore.All(net, xi.detach().mul(S(255)).round_().div_(S(255))).argmax(1).ne(yi).cpu().data<bool>().ToArray();
                // Across in floating point but not once rounded: stretch the total further past the boundary (no gradient step this time).
                for (int j = 0; j < open.Length; j++)
                    if (across[j] && !rounded[j]) { stretched.Add(j); overshoot[open[j]] = 2 * overshoot[open[j]] + 0.02; }
                if (stretched.Count > 0) Place(x, x0, total, stretched.Select(j => open[j]).ToArray(), overshoot, o.Eps, linf);
                across = across.Select((a, j) => a && rounded[j]).ToArray();
            }
            var stepping = Enumerable.Range(0, open.Length).Where(j => !across[j] && !stretched.Contains(j)).ToArray();
            if (stepping.Length > 0) Step(xi, logits, x, x0, total, candidates.index_select(0, rows), yi, open, stepping, overshoot, o.Eps, linf);
            done += open.Length - across.Count(a => a);
            open = open.Where((_, j) => !across[j]).ToArray();
            progress?.Report(new OptimizationStep(1, 1, step + 1, o.Steps, 0, new Dictionary<string, double>()) { Done = step + 1, Image = () => x });
        }
        return new OptimizationResult(x, done, cancelled, 0, new Dictionary<string, double>());
    }

    /// <summary>
    /// One DeepFool step for the open images at positions <paramref name="stepping"/> of <paramref name="open"/>
    /// (<paramref name="xi"/> and <paramref name="logits"/> hold every open image): for each candidate class, the
    /// linearized boundary's distance |f| / ‖w‖ (the dual norm: L2, or L1 for L∞), w the gradient difference; the
    /// nearest is stepped onto.
    /// </summary>
    static void Step(Tensor xi, Tensor logits, Tensor x, Tensor x0, Tensor total, Tensor candidates, Tensor y, long[] open, int[] stepping,
        double[] overshoot, double eps, bool linf)
    {
        var labelScore = logits.gather(1, y.view(-1, 1));
        var gLabel = autograd.grad([labelScore.sum()], [xi], retain_graph: true)[0];
        var fLabel = labelScore.detach().squeeze(1);
        int classes = (int)candidates.shape[1];
        var best = full(open.Length, S(float.PositiveInfinity), device: x.device);
        var move = zeros_like(gLabel);
        var shape = new long[] { -1, 1, 1, 1 };
        for (int c = 0; c < classes; c++)
        {
            var score = logits.gather(1, candidates.narrow(1, c, 1));
            var g = autograd.grad([score.sum()], [xi], retain_graph: c < classes - 1)[0];
            using var noGrad = no_grad();
            var w = g - gLabel;
            var f = (score.detach().squeeze(1) - fLabel).abs();
            var norm = (linf ? w.abs().flatten(1).sum(1) : w.flatten(1).norm(1)) + S(1e-12);
            var distance = f / norm;
            var nearer = distance.lt(best);
            best = where(nearer, distance, best);
            var candidate = linf
                ? w.sign() * ((f + S(1e-4)) / norm).view(shape)      // onto the boundary along the L∞-steepest direction
                : w * ((f + S(1e-4)) / (norm * norm)).view(shape);  // onto the boundary along w
            move = where(nearer.view(shape), candidate, move);
        }
        var ids = stepping.Select(j => open[j]).ToArray();
        using (no_grad()) total.index_add_(0, tensor(ids, device: x.device), move.index_select(0, tensor(stepping.Select(j => (long)j).ToArray(), device: x.device)), S(1));
        Place(x, x0, total, ids, overshoot, eps, linf);
    }

    /// <summary>For the images <paramref name="ids"/>: x = x0 + (1 + overshoot)·total, capped to norm eps (L2, or L∞) when eps is above 0, in 0..1.</summary>
    static void Place(Tensor x, Tensor x0, Tensor total, long[] ids, double[] overshoot, double eps, bool linf)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var rows = tensor(ids, device: x.device);
        var stretch = tensor(ids.Select(i => (float)(1 + overshoot[i])).ToArray(), device: x.device).view(-1, 1, 1, 1);
        var r = total.index_select(0, rows) * stretch;
        if (eps > 0) r = linf ? r.clamp(S(-eps), S(eps)) : r * (S(eps) / (r.flatten(1).norm(1) + S(1e-12))).clamp_max(S(1.0)).view(-1, 1, 1, 1);
        x.index_copy_(0, rows, (x0.index_select(0, rows) + r).clamp(S(0), S(1)));
    }
}
