using System.Globalization;
using System.Text;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Training;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>How the perturbed images were made.</summary>
internal enum PerturbationKind
{
    /// <summary>Crafted with the target model's own gradients.</summary>
    WhiteBox,
    /// <summary>Crafted on a surrogate model, then shown to the target (black-box transfer).</summary>
    Transfer,
    /// <summary>Random sign noise of the same eps (the baseline).</summary>
    Noise,
}

/// <summary>What an attack did to a model over a data set.</summary>
/// <param name="Kind">White-box, transfer or noise.</param>
/// <param name="Eps">L∞ budget in 0..1 pixel units.</param>
/// <param name="Steps">Iterations (1: FGSM).</param>
/// <param name="Count">Images attacked.</param>
/// <param name="CleanAccuracy">The target's accuracy on the unperturbed images.</param>
/// <param name="Accuracy">The target's accuracy on the perturbed images (robust accuracy).</param>
/// <param name="SuccessRate">Among the images the target classified correctly, the fraction it now gets wrong (or, targeted, now calls the target).</param>
/// <param name="MeanConfidence">The target's mean top-1 probability on the perturbed images.</param>
/// <param name="MaxLinf">The largest |x* − x|∞ seen (must not exceed eps).</param>
internal sealed record RobustnessResult(PerturbationKind Kind, double Eps, int Steps, int Count, double CleanAccuracy, double Accuracy, double SuccessRate, double MeanConfidence, double MaxLinf);

/// <summary>
/// Attacks over labelled data sets: robust accuracy, success rate and confidence for white-box,
/// transfer and noise perturbations, and sweeps over eps and the number of steps.
/// Images are resized to the crafting model's input size; eps is in 0..1 image space.
/// </summary>
internal static class Robustness
{
    /// <summary>Runs one kind of perturbation over <paramref name="data"/> and measures the target.</summary>
    /// <param name="target">The model whose answers count.</param>
    /// <param name="crafter">The model whose gradients make the perturbation (the target itself for white-box).</param>
    /// <param name="data">Labelled images.</param>
    /// <param name="kind">What to do.</param>
    /// <param name="options">Method, eps, steps (ignored for noise, except eps and seed).</param>
    /// <param name="batch">Images per batch.</param>
    /// <param name="progress">Images done.</param>
    /// <param name="cancel">Stops between batches.</param>
    public static RobustnessResult Evaluate(INetwork target, INetwork crafter, IImageDataset data, PerturbationKind kind, AttackOptions options, int batch = 250,
        IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        var targetMap = Datasets.ClassMap(target, data);
        var crafterMap = Datasets.ClassMap(crafter, data);
        long correctBefore = 0, correctAfter = 0, flipped = 0, n = 0;
        double confidence = 0, maxLinf = 0;
        for (int start = 0; start < data.Count; start += batch)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batch, data.Count - start)).ToArray();
            var x0 = Datasets.FitTo(data.Images(idx), crafter.Input).to(crafter.Device);
            var yTarget = tensor(idx.Select(i => targetMap[data.Label(i)]).ToArray());
            var yCrafter = tensor(idx.Select(i => crafterMap[data.Label(i)]).ToArray());
            var adv = kind == PerturbationKind.Noise
                ? Attack.SignNoise(x0, options.Eps, options.Seed + start)
                : Attack.Run(crafter, x0, yCrafter, options with { Seed = options.Seed + start });
            using var noGrad = no_grad();
            maxLinf = Math.Max(maxLinf, (adv - x0).abs().max().item<float>());
            var before = Attack.LogProbabilities(target, Datasets.FitTo(x0, target.Input)).cpu();
            var after = Attack.LogProbabilities(target, Datasets.FitTo(adv, target.Input)).cpu();
            var okBefore = before.argmax(1).eq(yTarget);
            var predAfter = after.argmax(1);
            var okAfter = predAfter.eq(yTarget);
            var success = options.Target is { } t ? predAfter.eq(S(t)) : okAfter.logical_not(); // a target index is in the target's label space
            correctBefore += okBefore.sum().item<long>();
            correctAfter += okAfter.sum().item<long>();
            flipped += (okBefore & success).sum().item<long>();
            confidence += after.exp().max(1).values.sum().item<float>();
            n += idx.Length;
            progress?.Report((int)n);
        }
        return new RobustnessResult(kind, options.Eps, options.EffectiveSteps, (int)n, correctBefore / (double)n, correctAfter / (double)n,
            correctBefore == 0 ? 0 : flipped / (double)correctBefore, confidence / n, maxLinf);
    }

    /// <summary>
    /// Accuracy against eps for each number of steps (1: FGSM; more: BIM with step eps/T), white-box,
    /// transfer from <paramref name="surrogate"/> (when given) and random sign noise.
    /// </summary>
    public static List<RobustnessResult> Sweep(INetwork target, INetwork? surrogate, IImageDataset data, IReadOnlyList<double> eps, IReadOnlyList<int> steps,
        int seed = 0, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        var rows = new List<RobustnessResult>();
        int kinds = surrogate is null ? 2 : 3, total = eps.Count * (steps.Count * (kinds - 1) + 1), done = 0;
        foreach (var e in eps)
        {
            var noise = Evaluate(target, target, data, PerturbationKind.Noise, new AttackOptions { Eps = e, Seed = seed }, cancel: cancel);
            progress?.Report((++done, total));
            foreach (var t in steps)
            {
                var o = new AttackOptions { Method = t == 1 ? AttackMethod.Fgsm : AttackMethod.Bim, Eps = e, Steps = t, Seed = seed };
                rows.Add(Evaluate(target, target, data, PerturbationKind.WhiteBox, o, cancel: cancel));
                progress?.Report((++done, total));
                if (surrogate is not null)
                {
                    rows.Add(Evaluate(target, surrogate, data, PerturbationKind.Transfer, o, cancel: cancel));
                    progress?.Report((++done, total));
                }
                rows.Add(noise with { Steps = t });
            }
        }
        return rows;
    }

    /// <summary>The sweep as CSV: kind, eps, steps, images, clean and robust accuracy, success rate, mean confidence, max L∞.</summary>
    public static string Csv(IEnumerable<RobustnessResult> rows)
    {
        var sb = new StringBuilder("kind,eps,steps,images,clean_accuracy,accuracy,success_rate,mean_confidence,max_linf\n");
        foreach (var r in rows)
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $"{Name(r.Kind)},{r.Eps},{r.Steps},{r.Count},{r.CleanAccuracy:0.#####},{r.Accuracy:0.#####},{r.SuccessRate:0.#####},{r.MeanConfidence:0.#####},{r.MaxLinf:0.#######}\n"));
        return sb.ToString();
    }

    /// <summary>Lower-case name of a kind (white-box, transfer, noise).</summary>
    public static string Name(PerturbationKind k) => k switch { PerturbationKind.WhiteBox => "white-box", PerturbationKind.Transfer => "transfer", _ => "noise" };

    /// <summary>One panel per number of steps: accuracy against eps for each kind.</summary>
    public static byte[] SweepPlot(string title, IReadOnlyList<RobustnessResult> rows)
    {
        var panels = new List<IPanel>();
        foreach (var t in rows.Select(r => r.Steps).Distinct().Order())
        {
            var series = new List<Series>();
            int c = 0;
            foreach (var kind in new[] { PerturbationKind.WhiteBox, PerturbationKind.Transfer, PerturbationKind.Noise })
            {
                var pts = rows.Where(r => r.Steps == t && r.Kind == kind).OrderBy(r => r.Eps).ToList();
                if (pts.Count > 0) series.Add(new Series(Name(kind), pts.Select(r => r.Eps).ToList(), pts.Select(r => r.Accuracy).ToList(), Plot.Palette[c]));
                c++;
            }
            panels.Add(new LineChart(t == 1 ? "T = 1 (FGSM)" : $"T = {t} (BIM)", "eps (0..1 pixel units)", "accuracy", series) { YRange = (0, 1) });
        }
        return Plot.Render(panels, panels.Count, title: title);
    }
}
