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
    public void Dispose() { Fashion.Dispose(); Mlp.Dispose(); }
}

/// <summary>The adversarial must-shows on the embedded Fashion-MNIST CNN, with the MLP as the black-box surrogate.</summary>
public class FashionAttackTests(FashionModels m, ITestOutputHelper output) : IClassFixture<FashionModels>
{
    RobustnessResult Run(PerturbationKind kind, AttackMethod method, double eps, int steps = 10, Reverie.Models.INetwork? crafter = null)
    {
        var r = Robustness.Evaluate(m.Fashion, crafter ?? m.Fashion, m.Test, kind, new AttackOptions { Method = method, Eps = eps, Steps = steps });
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
        var cw = Measure(Reverie.Adversarial.Attack.Run(net, x, y, new AttackOptions { Method = AttackMethod.CarliniWagner, Steps = 100, Searches = 6 }));
        var df = Measure(Reverie.Adversarial.Attack.Run(net, x, y, new AttackOptions { Method = AttackMethod.DeepFool, Eps = 0, Steps = 50 }));
        output.WriteLine($"{x.shape[0]} images: C&W success {cw.Success:P1}, median L2 {cw.Median:0.000}; DeepFool success {df.Success:P1}, median L2 {df.Median:0.000}");
        Assert.True(cw.Success >= 0.9 && df.Success >= 0.95, $"success C&W {cw.Success:P1}, DeepFool {df.Success:P1}");
        // With 6 searches of 100 steps (the paper runs 9 of 1,000) C&W is not always the smaller: within 1.5× either way.
        Assert.True(cw.Median <= 1.5 * df.Median, $"C&W's median L2 {cw.Median:0.000} more than 1.5 times DeepFool's {df.Median:0.000}");
        Assert.True(df.Median <= 1.5 * cw.Median, $"DeepFool's median L2 {df.Median:0.000} more than 1.5 times C&W's {cw.Median:0.000}");
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
