using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Reverie.Visualization;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Engine;

/// <summary>
/// Combinations of the engine's axes that no command offered before the one loop: each is a
/// different configuration of <see cref="ImageOptimizer"/>, checked on the real BVLC GoogLeNet.
/// </summary>
public class AxisCombinationTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;

    static Tensor Photo(int side) => ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), side, side);

    double Probability(Tensor image, int index)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Net.Probabilities(ImageIO.Resize(image, 224, 224))[0, index].item<float>();
    }

    [Fact]
    public void ADreamWhoseObjectiveAddsAClassTermRaisesThatClass()
    {
        // DeepDream's pyramid, roll and normalized step, with a class score added to the layer's L2:
        // the class needs the classifier at the input size, which the engine resizes to, on a
        // 256 px photo with octaves of other sizes.
        using var scope = NewDisposeScope();
        var photo = Photo(256);
        var language = new ObjectiveLanguage(Net);
        int goldfish = Reverie.Models.Registry.Labels.ImageNet.ToList().IndexOf("goldfish");
        var options = new DreamOptions { Octaves = 2, Steps = 8, Tile = 0 };
        var plain = new DeepDream(Net, language.Parse("inception_4c/output"), options).Run(photo);
        var withClass = new DeepDream(Net, language.Parse("inception_4c/output + 50*class:goldfish"), options).Run(photo);
        double p0 = Probability(photo, goldfish), pPlain = Probability(plain, goldfish), pClass = Probability(withClass, goldfish);
        output.WriteLine($"p(goldfish): photo {p0:E2}, plain dream {pPlain:E2}, dream + class term {pClass:E2}");
        Assert.True(pClass > 10 * Math.Max(p0, pPlain), $"the class term did not raise goldfish ({p0:E2}, {pPlain:E2} -> {pClass:E2})");
    }

    [Fact]
    public void AVisualizationWithTheNormalizedGradientStepExcitesTheChannel()
    {
        // Feature visualization's Fourier parameterization and Lucid's transforms, moved by DeepDream's step.
        using var scope = NewDisposeScope();
        string t = Net.ResolveLayer("inception_4a/output");
        var channel = new ChannelObjective(t, 97, "inception_4a/output");
        var options = new VisualizeOptions { Size = 128, Steps = 48, Step = StepKind.Normalized, LearningRate = 0.01, Seed = 1 };
        var steps = new List<double>();
        var r = new FeatureVisualizer(Net, channel, options).RunFull(new Sync(s => steps.Add(s.Value)));
        double first = steps[0];
        double Value(Tensor img) { using var s = NewDisposeScope(); using var ng = no_grad(); return channel.Evaluate(Net.Forward(img, [t])).item<float>(); }
        double start = Value(new FourierParameterization(1, 128, 128, new Generator(1)).Image().detach());
        double end = Value(r.Image);
        output.WriteLine($"channel 97 mean: start image {start:0.00}, first step {first:0.00}, after 48 normalized steps {end:0.00}");
        Assert.Equal(48, r.Steps);
        Assert.True(end > start + 5 && end > 3 * Math.Abs(start), $"the channel was not excited: {start:0.00} -> {end:0.00}");
    }

    [Fact]
    public void AnInversionWithLbfgsRecoversThePhotosFeatures()
    {
        // The inversion's objective (feature distance, alpha-norm, TV) and its pixels, moved by L-BFGS.
        using var scope = NewDisposeScope();
        var photo = Photo(96);
        var options = new InversionOptions { Steps = 25, Step = StepKind.Lbfgs, LearningRate = 1 };
        var losses = new List<double>();
        var (image, loss) = Inversion.Run(Net, "conv2/3x3", photo, options, new Sync(s => losses.Add(s.Terms["features"])));
        var (_, adam) = Inversion.Run(Net, "conv2/3x3", photo, options with { Step = StepKind.Adam, LearningRate = 0.05 });
        output.WriteLine($"relative feature loss: from noise {losses[0]:0.000}, after 25 L-BFGS steps {loss:0.000} (Adam, same steps: {adam:0.000})");
        Assert.Equal(25, losses.Count);
        Assert.True(loss < 0.4 * losses[0], $"L-BFGS went from {losses[0]:0.000} to {loss:0.000}");
        Assert.Equal(photo.shape, image.shape);
    }

    [Fact]
    public void AnObjectiveOnTheImageAloneNeedsNoNetwork()
    {
        // Total variation minimized by plain descent, with no network at all: the noise is smoothed.
        using var scope = NewDisposeScope();
        var noise = rand(new long[] { 1, 3, 32, 32 }, generator: new Generator(3));
        var tv = TotalVariation.NeuralStyle();
        double Tv(Tensor x) { using var ng = no_grad(); return tv.Evaluate(new Features(new Dictionary<string, Tensor>(), x)).item<float>(); }
        var r = new ImageOptimizer
        {
            Objective = -1.0 * tv.As("tv"),
            Parameterization = new PixelParameterization(noise),
            StepRule = new GradientDescentStep(1e-6),
            Schedule = new FixedSteps(30),
        }.Run();
        double before = Tv(noise), after = Tv(r.Image);
        output.WriteLine($"TV of noise {before:E3} -> {after:E3}; reported at the last step {r.Terms["tv"]:E3}");
        Assert.True(after < 0.5 * before, $"TV {before:E3} -> {after:E3}");
        Assert.True(r.Terms.ContainsKey("tv"));
    }

    [Fact]
    public void AnL2BallAttackStaysInItsBallAndLowersTheTrueClass()
    {
        // The gradient attacks' sign step on a ball of the other norm.
        using var scope = NewDisposeScope();
        var x0 = Photo(224);
        int label = (int)Net.Probabilities(x0).argmax(1).item<long>();
        double eps = 2.0;
        var r = new ImageOptimizer
        {
            Network = Net,
            Objective = Reverie.Adversarial.Attack.Objective(Net, tensor(new long[] { label }), null),
            Parameterization = new BallParameterization(x0, eps, l2: true),
            StepRule = new SignStep(0.004),
            Schedule = new FixedSteps(10),
        }.Run();
        double l2 = (r.Image - x0).flatten().norm().item<float>();
        double before = Probability(x0, label), after = Probability(r.Image, label);
        output.WriteLine($"L2 ball {eps}: |x*-x|2 = {l2:0.000}; p(true) {before:0.000} -> {after:0.000}");
        Assert.True(l2 <= eps + 1e-4, $"left the L2 ball: {l2}");
        Assert.True(after < before / 2, $"p(true) {before:0.000} -> {after:0.000}");
        Assert.True(r.Image.min().item<float>() >= 0 && r.Image.max().item<float>() <= 1);
    }

    sealed class Sync(Action<OptimizationStep> a) : IProgress<OptimizationStep>
    {
        public void Report(OptimizationStep value) => a(value);
    }
}
