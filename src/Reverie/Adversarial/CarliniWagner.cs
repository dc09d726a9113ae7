using Reverie.Models;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>
/// Carlini and Wagner's L2 attack (2017), untargeted or targeted: the image written as
/// x = (tanh(w) + 1) / 2, so that it stays in 0..1 without clipping; Adam on w minimizes
/// ‖x − x0‖² + c·max(Z_true − max_{i≠true} Z_i, −κ) (targeted: max(max_{i≠t} Z_i − Z_t, −κ)), Z the
/// logits; a binary search over c per image (up ×10 while no success, then halving the bracket)
/// keeps the smallest successful change. Each image of a batch has its own c. Each search starts Adam afresh
/// from where the last one ended, not from the photo (the reference restarts from the photo): in the tanh box a
/// pixel at 0 or 1 sits at w ≈ ∓7.25, which Adam at lr 0.01 moves by at most 1 in 100 steps, so a restart
/// leaves the dark background of a Fashion-MNIST image all but frozen; carried over, the searches add up
/// (on 27 Fashion-MNIST images at 6 searches of 100 steps: median L2 0.95 restarted, 0.70 carried over).
/// eps, when above 0,
/// is not a bound: Carlini-Wagner has none; it is ignored. Its own loop: the outer search restarts Adam and
/// keeps the best result per image, which the engine's one-objective loop does not do.
/// </summary>
internal static class CarliniWagner
{
    /// <summary>The search's first c.</summary>
    public const double InitialC = 1e-2;

    /// <summary>Attacks images [N,3,H,W] (0..1) with labels [N]; <see cref="AttackOptions.Steps"/> Adam steps per search step.</summary>
    /// <remarks>With <paramref name="eightBit"/>, success is judged on the image rounded to 8 bits a channel, as it will be saved.</remarks>
    public static OptimizationResult Run(INetwork net, Tensor images, Tensor labels, AttackOptions o, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false)
    {
        var x0 = images.detach().to(ScalarType.Float32).to(net.Device);
        long n = x0.shape[0];
        var y = labels.to(ScalarType.Int64).to(net.Device);
        var lo = new double[n];
        var hi = Enumerable.Repeat(double.PositiveInfinity, (int)n).ToArray();
        var c = Enumerable.Repeat(InitialC, (int)n).ToArray();
        var bestL2 = Enumerable.Repeat(double.PositiveInfinity, (int)n).ToArray();
        var best = x0.clone();
        int searches = o.Searches, done = 0, total = searches * o.Steps;
        bool cancelled = false;
        // w with tanh(w) = 2·x0 − 1, kept off ±1 so that atanh is finite.
        var w0 = (x0 * S(2) - S(1)).clamp(S(-1 + 1e-6), S(1 - 1e-6)).atanh();
        var start = w0;
        for (int search = 0; search < searches && !cancelled; search++)
        {
            using var w = new TorchSharp.Modules.Parameter(start.clone());
            using var adam = optim.Adam([w], o.CwLearningRate);
            var cs = tensor(c.Select(v => (float)v).ToArray(), device: x0.device);
            var succeeded = new bool[n];
            for (int step = 0; step < o.Steps; step++)
            {
                if (cancel.IsCancellationRequested) { cancelled = true; break; }
                using var scope = NewDisposeScope();
                using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the step
                adam.zero_grad();
                var x = (w.tanh() + S(1)) * S(0.5);
                var z = Explaining.ClassScore.All(net, x);
                var margin = Margin(z, y, o.Target);
                var l2 = (x - x0).pow(S(2)).flatten(1).sum(1);
                var loss = (l2 + cs * margin.clamp_min(S(-o.Confidence))).sum();
                loss.backward();
                adam.step();
                using (no_grad())
                {
                    var judged = eightBit ? Margin(Explaining.ClassScore.All(net, x.mul(S(255)).round_().div_(S(255))), y, o.Target) : margin;
                    var ok = judged.lt(S(0)).cpu().data<bool>().ToArray();
                    var dist = l2.cpu().data<float>().ToArray();
                    for (int i = 0; i < n; i++)
                        if (ok[i] && dist[i] < bestL2[i])
                        {
                            bestL2[i] = dist[i];
                            best[i].copy_(x[i].detach());
                            succeeded[i] = true;
                        }
                }
                progress?.Report(new OptimizationStep(search + 1, searches, step + 1, o.Steps, loss.item<float>(), new Dictionary<string, double>()) { Done = ++done, Image = () => x.detach() });
            }
            start = w.detach().clone();
            for (int i = 0; i < n; i++)
            {
                if (succeeded[i]) hi[i] = Math.Min(hi[i], c[i]); else lo[i] = Math.Max(lo[i], c[i]);
                c[i] = double.IsPositiveInfinity(hi[i]) ? c[i] * 10 : (lo[i] + hi[i]) / 2;
            }
        }
        return new OptimizationResult(best, done, cancelled, 0, new Dictionary<string, double>());
    }

    /// <summary>How far each image is from fooling the network, from its scores (logits or log-probabilities): below 0 means it does (untargeted: the true class's score minus the best other one's; targeted: the best other one's minus the target's).</summary>
    internal static Tensor Margin(Tensor z, Tensor y, int? target)
    {
        var mask = nn.functional.one_hot(target is { } t ? full_like(y, S(t)) : y, z.shape[1]).to(ScalarType.Bool);
        var own = z.masked_select(mask).reshape(-1);
        var other = z.masked_fill(mask, S(float.NegativeInfinity)).amax([1]);
        return target is null ? own - other : other - own;
    }
}
