using Reverie.Adversarial;
using Reverie.Models;
using Reverie.Tests.Infrastructure;
using Reverie.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Adversarial;

/// <summary>The embedded models, loaded once for a test class.</summary>
public sealed class FashionModels : IDisposable
{
    internal ConvNet Fashion { get; } = Checkpoint.LoadEmbedded("fashion");
    internal ConvNet Mlp { get; } = Checkpoint.LoadEmbedded("fashion-mlp");
    /// <summary>The first 100 test images of each class (1,000 images).</summary>
    internal IImageDataset Test { get; } = Datasets.PerClass(Datasets.Open("fashion-mnist", test: true), 100, 0);
    /// <summary>
    /// 30 of each class (300 images), for the suite's tests: enough for their comparisons to fail when
    /// an attack breaks; their figures on 1,000 images are the autoattack benchmark's (bench/README.md).
    /// </summary>
    internal IImageDataset Test300 { get; } = Datasets.PerClass(Datasets.Open("fashion-mnist", test: true), 30, 0);
    /// <summary>C&amp;W's result on the correctly classified images, made once: three tests compare with it.</summary>
    internal Tensor? CarliniWagner { get; set; }
    public void Dispose() { Fashion.Dispose(); Mlp.Dispose(); CarliniWagner?.Dispose(); }
}

/// <summary>The adversarial must-shows on the embedded Fashion-MNIST CNN, with the MLP as the black-box surrogate.</summary>
public class FashionAttackTests(FashionModels m, ITestOutputHelper output) : IClassFixture<FashionModels>
{
    /// <summary>The smaller eps of the must-show, where PGD-40 leaves 20–60% of the images classified correctly.</summary>
    const double SmallEps = 0.05;

    RobustnessResult Run(PerturbationKind kind, AttackMethod method, double eps, int steps = 10, Reverie.Models.INetwork? crafter = null, IImageDataset? data = null)
    {
        var r = Robustness.Evaluate(m.Fashion, crafter ?? m.Fashion, data ?? m.Test, kind, new AttackOptions { Method = method, Eps = eps, Steps = steps });
        output.WriteLine($"{Robustness.Name(kind)} {method} T={r.Steps} eps {eps}: accuracy {r.CleanAccuracy:P1} -> {r.Accuracy:P1}, success {r.SuccessRate:P1}, confidence {r.MeanConfidence:0.000}, max |d| {r.MaxLinf:0.00000}");
        Assert.True(r.MaxLinf <= eps + 1e-6);
        return r;
    }

    /// <summary>The fashion model's top class for each image.</summary>
    Tensor Predict(Tensor images) { using var noGrad = no_grad(); return Reverie.Adversarial.Attack.LogProbabilities(m.Fashion, images).argmax(1); }

    /// <summary>Three test images of each class, those the fashion model gets right, with their labels.</summary>
    (Tensor X, Tensor Y) CorrectlyClassified()
    {
        var idx = Enumerable.Range(0, m.Test.Count).Where(i => i % 100 < 3).ToArray();
        var x = Datasets.FitTo(m.Test.Images(idx), m.Fashion.Input);
        var y = tensor(idx.Select(i => (long)m.Test.Label(i)).ToArray());
        var keep = Predict(x).eq(y).nonzero().flatten();
        return (x.index_select(0, keep), y.index_select(0, keep));
    }

    /// <summary>C&amp;W at its defaults (9 searches of 100 Adam steps) on <see cref="CorrectlyClassified"/>'s images; deterministic, so made once for the class.</summary>
    Tensor CarliniWagnerOf(Tensor x, Tensor y) =>
        m.CarliniWagner ??= Reverie.Adversarial.Attack.Run(m.Fashion, x, y, new AttackOptions { Method = AttackMethod.CarliniWagner, Steps = 100 }).DetachFromDisposeScope();

    /// <summary>
    /// The two minimal-perturbation attacks on the same correctly classified test images (three of each class): each fools
    /// nearly all of them, their median L2 changes agree within 1.5× (the issue allows DeepFool 1.5× C&amp;W's median).
    /// </summary>
    [Fact]
    public void CarliniWagnerAndDeepFoolFindSmallL2Changes()
    {
        using var scope = NewDisposeScope();
        var net = m.Fashion;
        var (x, y) = CorrectlyClassified();
        (double Success, double Median) Measure(Tensor adv)
        {
            var fooled = Predict(adv).ne(y).cpu().data<bool>().ToArray();
            var l2 = (adv - x).flatten(1).norm(1).cpu().data<float>().ToArray();
            var ok = l2.Where((_, i) => fooled[i]).OrderBy(v => v).ToArray();
            return (fooled.Count(f => f) / (double)fooled.Length, ok.Length == 0 ? double.NaN : ok[ok.Length / 2]);
        }
        var cw = Measure(CarliniWagnerOf(x, y));
        var df = Measure(Reverie.Adversarial.Attack.Run(net, x, y, new AttackOptions { Method = AttackMethod.DeepFool, Eps = 0, Steps = 50 }));
        output.WriteLine($"{x.shape[0]} images: C&W success {cw.Success:P1}, median L2 {cw.Median:0.000}; DeepFool success {df.Success:P1}, median L2 {df.Median:0.000}");
        Assert.True(cw.Success >= 0.9 && df.Success >= 0.95, $"success C&W {cw.Success:P1}, DeepFool {df.Success:P1}");
        // With 9 searches of 100 steps (the paper's code runs 9 of up to 10,000) C&W is not always the smaller: within 1.5× either way.
        Assert.True(cw.Median <= 1.5 * df.Median, $"C&W's median L2 {cw.Median:0.000} more than 1.5 times DeepFool's {df.Median:0.000}");
        Assert.True(df.Median <= 1.5 * cw.Median, $"DeepFool's median L2 {df.Median:0.000} more than 1.5 times C&W's {cw.Median:0.000}");
    }

    /// <summary>
    /// Carlini–Wagner against PGD-L2 on the same correctly classified images (three of each class): for each image,
    /// the smallest L2 radius at which PGD-L2 (40 steps, random start) fools it is found by bisection (12 halvings of
    /// [0, 4]); C&amp;W's median successful L2 is smaller than the median of those radii, as a method that minimizes
    /// the change itself should be (issue 19). C&amp;W runs at its defaults (9 searches of 100 Adam steps). Before each
    /// search started where the last ended, C&amp;W restarted from the photo and gave 0.951 against PGD-L2's 0.687.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void CarliniWagnersMedianL2IsBelowPgdL2sSmallestSuccessfulRadius()
    {
        using var scope = NewDisposeScope();
        var (x, y) = CorrectlyClassified();
        var cwAdv = CarliniWagnerOf(x, y);
        var cwFooled = Predict(cwAdv).ne(y).cpu().data<bool>().ToArray();
        var cwL2 = (cwAdv - x).flatten(1).norm(1).cpu().data<float>().ToArray();
        var radii = new double[x.shape[0]];
        for (int i = 0; i < radii.Length; i++)
        {
            using var inner = NewDisposeScope();
            var xi = x.narrow(0, i, 1);
            var yi = y.narrow(0, i, 1);
            bool Fools(double r) => Predict(Reverie.Adversarial.Attack.Run(m.Fashion, xi, yi, new AttackOptions { Method = AttackMethod.PgdL2, Eps = r, Steps = 40, Seed = 1 })).ne(yi).item<bool>();
            double lo = 0, hi = 4;
            if (!Fools(hi)) { radii[i] = double.PositiveInfinity; continue; }
            for (int k = 0; k < 12; k++)
            {
                double mid = (lo + hi) / 2;
                if (Fools(mid)) hi = mid; else lo = mid;
            }
            radii[i] = hi;
        }
        double cwMedian = cwL2.Where((_, i) => cwFooled[i]).Order().ElementAt(cwFooled.Count(f => f) / 2);
        double pgdMedian = radii.Order().ElementAt(radii.Length / 2);
        int below = Enumerable.Range(0, radii.Length).Count(i => cwFooled[i] && cwL2[i] < radii[i]);
        output.WriteLine($"{radii.Length} images: C&W fools {cwFooled.Count(f => f)}, median L2 {cwMedian:0.000}; PGD-L2's smallest successful radius: median {pgdMedian:0.000} (range {radii.Min():0.000}–{radii.Max():0.000}); C&W's change is the smaller on {below} images");
        Assert.True(cwFooled.Count(f => f) >= 0.9 * cwFooled.Length, $"C&W fooled {cwFooled.Count(f => f)} of {cwFooled.Length}");
        Assert.True(cwMedian < pgdMedian, $"C&W's median L2 {cwMedian:0.000} is not below PGD-L2's median smallest radius {pgdMedian:0.000}");
    }

    /// <summary>
    /// HopSkipJump as a decision-based black box: it is given a function that returns only the top label, and on the
    /// correctly classified test images of <see cref="CorrectlyClassified"/> (three of each class), within 10,000
    /// queries an image, it fools nearly all with a median L2 change within 2× of C&amp;W's (the issue's bound), never
    /// spends more than its budget, and its result has no NaN. (On the first correct image of each class alone, ten
    /// images, C&amp;W's median is 0.506 and HopSkipJump's 1.030, 2.04×: too few images for a median; 2026-12-06.)
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void HopSkipJumpReadsOnlyLabelsAndComesWithinTwiceCarliniWagnersL2()
    {
        using var scope = NewDisposeScope();
        var (x, y) = CorrectlyClassified();
        long calls = 0, images = 0;
        Tensor Labels(Tensor batch) { calls++; images += batch.shape[0]; return Predict(batch); }
        var o = new AttackOptions { Method = AttackMethod.HopSkipJump, Eps = 0, Steps = 10_000, Seed = 1 };
        var run = HopSkipJump.Run(Labels, x, y, o, null, default);
        var hsj = run.Image;
        Assert.False(hsj.isnan().any().item<bool>(), "HopSkipJump's result has NaN");
        Assert.True(hsj.min().item<float>() >= 0 && hsj.max().item<float>() <= 1);
        var fooled = Predict(hsj).ne(y).cpu().data<bool>().ToArray();
        var l2 = (hsj - x).flatten(1).norm(1).cpu().data<float>().ToArray();
        double hsjMedian = l2.Where((_, i) => fooled[i]).Order().ElementAt(fooled.Count(f => f) / 2);
        var cwAdv = CarliniWagnerOf(x, y);
        var cwFooled = Predict(cwAdv).ne(y).cpu().data<bool>().ToArray();
        var cwL2 = (cwAdv - x).flatten(1).norm(1).cpu().data<float>().ToArray().Where((_, i) => cwFooled[i]).Order().ToArray();
        double cwMedian = cwL2[cwL2.Length / 2];
        output.WriteLine($"{x.shape[0]} images: HopSkipJump fools {fooled.Count(f => f)}, median L2 {hsjMedian:0.000}, {run.Terms["queries"]:0} queries an image ({images} images in {calls} calls); C&W fools {cwFooled.Count(f => f)}, median L2 {cwMedian:0.000}");
        Assert.True(fooled.Count(f => f) >= 0.95 * fooled.Length, $"HopSkipJump fooled {fooled.Count(f => f)} of {fooled.Length}");
        Assert.True(hsjMedian <= 2 * cwMedian, $"HopSkipJump's median L2 {hsjMedian:0.000} is more than twice C&W's {cwMedian:0.000}");
        Assert.True(run.Terms["queries"] <= 10_000, $"{run.Terms["queries"]} queries an image");
        Assert.InRange(images, (long)(0.9 * run.Terms["queries"] * x.shape[0]), (long)(run.Terms["queries"] * x.shape[0]) + 2 * x.shape[0]);
    }

    /// <summary>
    /// DeepFool in each norm on the same correctly classified images: both fool nearly all, and each finds the
    /// smaller change in its own norm (the L∞ form in L∞, the L2 form in L2), as the paper's ℓ_p family should.
    /// </summary>
    [Fact]
    public void DeepFoolInLinfFindsTheSmallerLinfChangeAndInL2TheSmallerL2Change()
    {
        using var scope = NewDisposeScope();
        var (x, y) = CorrectlyClassified();
        (double Success, double Linf, double L2) Measure(AttackMethod method)
        {
            var adv = Reverie.Adversarial.Attack.Run(m.Fashion, x, y, new AttackOptions { Method = method, Eps = 0, Steps = 50 });
            var fooled = Predict(adv).ne(y).cpu().data<bool>().ToArray();
            var d = (adv - x).flatten(1);
            double Median(Tensor per) { var v = per.cpu().data<float>().ToArray().Where((_, i) => fooled[i]).Order().ToArray(); return v.Length == 0 ? double.NaN : v[v.Length / 2]; }
            return (fooled.Count(f => f) / (double)fooled.Length, Median(d.abs().amax([1])), Median(d.norm(1)));
        }
        var l2 = Measure(AttackMethod.DeepFool);
        var linf = Measure(AttackMethod.DeepFoolLinf);
        output.WriteLine($"{x.shape[0]} images: deepfool (L2) fools {l2.Success:P1}, median L∞ {l2.Linf:0.0000}, L2 {l2.L2:0.000}; deepfool-linf fools {linf.Success:P1}, median L∞ {linf.Linf:0.0000}, L2 {linf.L2:0.000}");
        Assert.True(l2.Success >= 0.95 && linf.Success >= 0.95, $"success L2 {l2.Success:P1}, L∞ {linf.Success:P1}");
        Assert.True(linf.Linf < l2.Linf, $"deepfool-linf's median L∞ {linf.Linf:0.0000} is not below deepfool's {l2.Linf:0.0000}");
        Assert.True(l2.L2 < linf.L2, $"deepfool's median L2 {l2.L2:0.000} is not below deepfool-linf's {linf.L2:0.000}");
    }

    /// <summary>
    /// The Square Attack as a black box: on correctly classified test images (three of each class) it
    /// fools far more than sign noise of the same eps, stays inside the eps-ball, counts its queries
    /// within the budget, and asks the model nothing but log-probabilities (the oracle is a function
    /// of images to scores: no network, no gradient, reaches it).
    /// </summary>
    [Fact]
    public void SquareAttackFoolsThroughScoresAloneWithinItsQueryBudget()
    {
        using var scope = NewDisposeScope();
        var net = m.Fashion;
        var (x, y) = CorrectlyClassified();
        long asked = 0;
        Tensor Oracle(Tensor images)
        {
            Assert.False(images.requires_grad);
            asked += images.shape[0];
            using var noGrad = no_grad();
            return Reverie.Adversarial.Attack.LogProbabilities(net, images);
        }
        const double eps = 0.1;
        var r = SquareAttack.Run(Oracle, x, y, new AttackOptions { Method = AttackMethod.Square, Eps = eps, Steps = 1000, Seed = 1 }, null, default);
        double fooled = Predict(r.Image).ne(y).to(ScalarType.Float32).mean().item<float>();
        double noise = Predict(Reverie.Adversarial.Attack.SignNoise(x, eps, 1)).ne(y).to(ScalarType.Float32).mean().item<float>();
        double linf = (r.Image - x).abs().max().item<float>();
        output.WriteLine($"{x.shape[0]} images, eps {eps}: square fooled {fooled:P1} with {r.Terms["queries"]:0.0} queries an image on average ({asked} in all); sign noise fooled {noise:P1}; max |d| {linf:0.0000}");
        Assert.True(linf <= eps + 1e-6, $"max |d| {linf}");
        Assert.True(fooled >= 0.8 && fooled >= noise + 0.5, $"square fooled {fooled:P1}, noise {noise:P1}");
        Assert.True(r.Terms["queries"] <= 1000 && asked == (long)Math.Round(r.Terms["queries"] * x.shape[0]), $"queries {r.Terms["queries"]}, asked {asked}");
        Assert.Equal(fooled, r.Terms["fooled"], 3);
    }

    /// <summary>
    /// Issue 19's Square must-show: at eps 0.1, within 5,000 queries an image and reading only log-probabilities,
    /// Square fools at least 90% of the images the model gets right, and none of its images leaves the ball. On 300
    /// test images (30 of each class) since issue 37; the figure at the issue's size is the autoattack bench's (the first
    /// 1,000 test images: 98.7% within 1,000 queries, bench/README.md).
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void SquareFoolsNinetyPercentWithinFiveThousandQueries()
    {
        using var scope = NewDisposeScope();
        var data = m.Test300;
        var x = Datasets.FitTo(data.Images(Enumerable.Range(0, data.Count).ToList()), m.Fashion.Input);
        var y = tensor(Enumerable.Range(0, data.Count).Select(i => (long)data.Label(i)).ToArray());
        var right = Predict(x).eq(y);
        long asked = 0;
        Tensor Oracle(Tensor images)
        {
            Assert.False(images.requires_grad);
            asked += images.shape[0];
            using var noGrad = no_grad();
            return Reverie.Adversarial.Attack.LogProbabilities(m.Fashion, images);
        }
        const double eps = 0.1;
        long fooled = 0, correct = right.sum().item<long>();
        double worst = 0, queries = 0;
        for (int s = 0; s < x.shape[0]; s += 250)
        {
            using var inner = NewDisposeScope();
            long n = Math.Min(250, x.shape[0] - s);
            var (xb, yb) = (x.narrow(0, s, n), y.narrow(0, s, n));
            var r = SquareAttack.Run(Oracle, xb, yb, new AttackOptions { Method = AttackMethod.Square, Eps = eps, Steps = 5000, Seed = 1 }, null, default);
            fooled += (Predict(r.Image).ne(yb) & right.narrow(0, s, n)).sum().item<long>();
            worst = Math.Max(worst, (r.Image - xb).abs().max().item<float>());
            queries += r.Terms["queries"] * n;
        }
        double rate = fooled / (double)correct;
        output.WriteLine($"{x.shape[0]} images, {correct} classified right: Square fools {rate:P1} of those at eps {eps} within 5,000 queries ({queries / x.shape[0]:0} an image on average, {asked} asked in all); max |d| {worst:0.0000}");
        Assert.Equal(300, x.shape[0]);
        Assert.True(rate >= 0.9, $"Square fooled {rate:P1} of the images classified right");
        Assert.True(worst <= eps + 1e-6, $"max |d| {worst}");
        Assert.True(queries / x.shape[0] <= 5000);
    }

    /// <summary>
    /// APGD's pieces against the paper's definitions, worked by hand: the checkpoints of 100 iterations
    /// (p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)), and the DLR loss on logits
    /// [3, 1, 2, 0.5, −1] (sorted 3, 2, 1, 0.5, −1), unchanged when the logits are shifted or scaled.
    /// </summary>
    [Fact]
    public void ApgdCheckpointsAndDlrLossFollowThePaper()
    {
        Assert.Equal([22, 41, 57, 70, 80, 87, 93, 99], Apgd.Checkpoints(100));
        Assert.Equal([4, 6, 8, 10, 12, 13], Apgd.Checkpoints(14)); // ⌈3.08⌉, ⌈5.74⌉, …, ⌈12.18⌉; ⌈13.02⌉ = 14 is past the end
        using var scope = NewDisposeScope();
        var z = tensor(new float[] { 3, 1, 2, 0.5f, -1 }).reshape(1, 5);
        double Dlr(Tensor logits, long label, long? target = null) =>
            Apgd.Loss(logits, tensor(new[] { label }), target is { } t ? tensor(new[] { t }) : null, dlr: true).item<float>();
        Assert.Equal(1.0, Dlr(z, 1), 5);                         // −(1 − 3) / (3 − 1)
        Assert.Equal(-0.5, Dlr(z, 0), 5);                        // −(3 − 2) / (3 − 1)
        Assert.Equal(-4 / 2.25, Dlr(z, 0, 4), 5);                // −(3 − (−1)) / (3 − (1 + 0.5) / 2)
        Assert.Equal(Dlr(z, 2, 3), Dlr(z * S(10) + S(7), 2, 3), 4);
        Assert.Equal(Dlr(z, 1), Dlr(nn.functional.log_softmax(z, 1), 1), 4); // log-probabilities serve as logits
        // Cross-entropy: minus the label's log-probability; targeted, the target's.
        var lp = nn.functional.log_softmax(z, 1);
        Assert.Equal(-lp[0, 1].item<float>(), Apgd.Loss(lp, tensor(new[] { 1L }), null, dlr: false).item<float>(), 5);
        Assert.Equal(lp[0, 4].item<float>(), Apgd.Loss(lp, tensor(new[] { 1L }), tensor(new[] { 4L }), dlr: false).item<float>(), 5);
    }

    /// <summary>
    /// Issue 19's must-show, on 300 test images (30 of each class) since issue 37 (the figures on 1,000 images are the
    /// README's `attack benchmark` runs): at eps 0.1 the worst case of the standard suite (APGD-CE,
    /// APGD-T, Square) leaves no more robust accuracy than PGD-40, and at an eps where PGD-40 leaves 20–60%,
    /// APGD-CE leaves less. The worst case is never above any one attack's robust accuracy.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void TheSuiteIsAtLeastAsStrongAsPgd40AndApgdCeBeatsItWherePgdLeavesHalf()
    {
        const double small = SmallEps;
        var data = m.Test300;
        var pgd = Run(PerturbationKind.WhiteBox, AttackMethod.Pgd, 0.1, steps: 40, data: data);
        var pgdSmall = Run(PerturbationKind.WhiteBox, AttackMethod.Pgd, small, steps: 40, data: data);
        // The whole suite at 0.1, where APGD-CE leaves few images for the others; APGD-CE alone at the
        // small eps (the full suite there costs ten minutes of CI, spent mostly by Square on the
        // images APGD leaves, and asserts nothing more).
        var report = AttackBenchmark.Run(m.Fashion, data, data.Count, new BenchmarkSettings(BenchmarkSettings.Standard, [0.1]));
        var apgdOnly = AttackBenchmark.Run(m.Fashion, data, data.Count, new BenchmarkSettings(["apgd-ce"], [small]));
        foreach (var row in report.Rows.Concat(apgdOnly.Rows))
            output.WriteLine($"eps {row.Eps}: clean {row.CleanAccuracy:P1}, " + string.Join(", ", row.Attacks.Select(a => $"{a.Attack} {a.RobustAccuracy:P1} ({a.Seconds:0} s, {a.QueriesPerImage:0} evaluations an image)")) + $", worst case {row.WorstCase:P1}");
        output.WriteLine($"PGD-40: {pgd.Accuracy:P1} at 0.1, {pgdSmall.Accuracy:P1} at {small}");
        Assert.Equal(300, report.Images);
        Assert.Equal(pgd.CleanAccuracy, report.Rows[0].CleanAccuracy, 6);
        foreach (var row in report.Rows.Concat(apgdOnly.Rows))
        {
            Assert.All(row.Attacks, a => Assert.True(row.WorstCase <= a.RobustAccuracy, $"worst case {row.WorstCase:P1} above {a.Attack}'s {a.RobustAccuracy:P1}"));
            Assert.Equal(row.WorstCase, row.Robust.Count / 300.0, 6);
        }
        Assert.True(report.Rows[0].WorstCase <= pgd.Accuracy, $"the suite's worst case at 0.1 ({report.Rows[0].WorstCase:P1}) is above PGD-40's {pgd.Accuracy:P1}");
        Assert.InRange(pgdSmall.Accuracy, 0.2, 0.6);
        double apgd = apgdOnly.Rows[0].Attacks.Single(a => a.Attack == "apgd-ce").RobustAccuracy;
        Assert.True(apgd < pgdSmall.Accuracy, $"APGD-CE leaves {apgd:P1} at {small}, PGD-40 {pgdSmall.Accuracy:P1}");
    }

    /// <summary>
    /// The embedded <c>fashion-robust</c> (FGSM-RS at eps 0.1) under the whole suite at 0.1, on 300 test images (500 before
    /// issue 37) with APGD-T
    /// over 3 targets and Square with 1,000 queries: it keeps at least 80% clean and 55% in the worst case per image (measured:
    /// 84.6% and 60.2%, 2.3 minutes; on 1,000 images 85.3% and 60.1%, docs/training.md), where the suite leaves
    /// <c>fashion</c> nothing (the test above).
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void TheRobustModelKeepsMoreThanHalfItsImagesUnderTheWholeSuite()
    {
        using var robust = Checkpoint.LoadEmbedded("fashion-robust");
        var report = AttackBenchmark.Run(robust, m.Test300, m.Test300.Count, new BenchmarkSettings(BenchmarkSettings.Standard, [0.1]) { Targets = 3, Queries = 1000 });
        var row = report.Rows[0];
        output.WriteLine($"fashion-robust at 0.1 on {report.Images} images: clean {row.CleanAccuracy:P1}, " + string.Join(", ", row.Attacks.Select(a => $"{a.Attack} {a.RobustAccuracy:P1} ({a.Seconds:0} s)")) + $", worst case {row.WorstCase:P1}");
        Assert.True(row.CleanAccuracy >= 0.8, $"clean accuracy {row.CleanAccuracy:P1}");
        Assert.True(row.WorstCase >= 0.55, $"worst case {row.WorstCase:P1}");
    }

    [Fact]
    public void WhiteBoxFgsmAndPgdBreakTheModelWhileNoiseDoesNot()
    {
        var fgsm = Run(PerturbationKind.WhiteBox, AttackMethod.Fgsm, 0.1);
        var noise = Run(PerturbationKind.Noise, AttackMethod.Fgsm, 0.1);
        var pgd = Run(PerturbationKind.WhiteBox, AttackMethod.Pgd, 0.1, steps: 40);
        Assert.True(fgsm.CleanAccuracy >= 0.9, $"clean accuracy {fgsm.CleanAccuracy:P1}");
        Assert.True(fgsm.Accuracy <= 0.30, $"FGSM at 0.1 leaves {fgsm.Accuracy:P1}");
        Assert.True(noise.Accuracy >= 0.80, $"sign noise at 0.1 leaves only {noise.Accuracy:P1}");
        Assert.True(pgd.Accuracy <= 0.05, $"PGD-40 at 0.1 leaves {pgd.Accuracy:P1}");
    }

    [Fact]
    public void TransferFromTheMlpBeatsNoiseOfTheSameEps()
    {
        Assert.NotEqual(m.Fashion.Spec.Layers.Count(l => l.Type == "conv"), m.Mlp.Spec.Layers.Count(l => l.Type == "conv"));
        foreach (var eps in new[] { 0.1, 0.2 })
        {
            var noise = Run(PerturbationKind.Noise, AttackMethod.Fgsm, eps);
            foreach (var t in new[] { 1, 10 })
            {
                var transfer = Run(PerturbationKind.Transfer, t == 1 ? AttackMethod.Fgsm : AttackMethod.Bim, eps, t, m.Mlp);
                Assert.True(transfer.Accuracy < noise.Accuracy, $"transfer T={t} at {eps} ({transfer.Accuracy:P1}) is no worse for the target than noise ({noise.Accuracy:P1})");
            }
        }
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void CppnFoolingImagesReachNinetyNinePercentForMostClasses()
    {
        var evo = new FoolingEvolution(m.Fashion, new FoolingOptions { Encoding = FoolingEncoding.Cppn, Generations = 200, Population = 200, MapElites = true, Seed = 0 });
        var results = evo.Run(Enumerable.Range(0, 10).ToList());
        foreach (var r in results) output.WriteLine($"{r.Label}: {r.Confidence:0.0000} (generation {r.Generation})");
        int fooled = results.Count(r => r.Confidence >= 0.99);
        Assert.True(fooled >= 8, $"only {fooled} of 10 classes reached 99%");
        // Black-box: the reported confidence is the model's own answer on the returned image.
        using var noGrad = no_grad();
        foreach (var r in results)
            Assert.Equal(r.Confidence, m.Fashion.Probabilities(r.Image)[0, r.Class].item<float>(), 4);
        Assert.All(evo.Log.GroupBy(e => e.Class), g => Assert.True(g.Zip(g.Skip(1)).All(p => p.Second.BestConfidence >= p.First.BestConfidence), "an elite got worse"));
    }
}
