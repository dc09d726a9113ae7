using Reverie.Objectives;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Reverie.Visualization;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Visualization;

/// <summary>Feature visualization on BVLC GoogLeNet.</summary>
public class VisualizeTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;

    [Fact]
    public void EspressoClassVisualizationIsConfidentlyEspresso()
    {
        using var scope = NewDisposeScope();
        var objective = ObjectiveLanguage.Parse(Net, "class:espresso");
        var image = new FeatureVisualizer(Net, objective, new VisualizeOptions { Steps = 512 }).Run();
        ImageIO.Save(image, Path.Combine(Path.GetTempPath(), "reverie-espresso.png"));
        float p;
        using (no_grad()) p = Net.Probabilities(image)[0, 967].item<float>();
        output.WriteLine($"p(espresso) = {p:0.0000}");
        Assert.Equal("espresso", Net.Labels![967]);
        Assert.True(p >= 0.9f, $"p(espresso) = {p}");
    }
}

/// <summary>Channels, diversity and the objective language.</summary>
public class ChannelVisualizationTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;
    const string Layer = "inception_4a/output";

    double MeanActivation(Tensor image, int channel)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        string t = Net.ResolveLayer(Layer);
        return Net.Forward(image, [t])[t][0, channel].mean().item<float>();
    }

    [Fact]
    public void ChannelVisualizationsExciteTheirChannelsAndDiffer()
    {
        using var scope = NewDisposeScope();
        int[] channels = [0, 3, 7, 9, 11, 15, 40, 97];
        string t = Net.ResolveLayer(Layer);
        Objective obj = channels.Select((c, i) => (Objective)new ChannelObjective(t, c, Layer, i)).Aggregate((a, b) => a + b);
        var images = new FeatureVisualizer(Net, obj, new VisualizeOptions { Batch = channels.Length, Steps = 48, Seed = 2 }).Run();
        var gray = full(1, 3, 224, 224, S(0.5f));
        for (int i = 0; i < channels.Length; i++)
        {
            double before = MeanActivation(gray, channels[i]), after = MeanActivation(images.narrow(0, i, 1), channels[i]);
            output.WriteLine($"channel {channels[i]}: mid-gray {before:G3} -> {after:G3}");
            Assert.True(after >= 10 * Math.Max(before, 0.05), $"channel {channels[i]}: {before:G3} -> {after:G3}");
        }
        var flat = images.reshape(channels.Length, -1);
        flat = flat - flat.mean([1], keepdim: true);
        flat = flat / flat.norm(1, keepdim: true);
        var corr = matmul(flat, flat.t());
        double worst = 0;
        for (int i = 0; i < channels.Length; i++)
            for (int j = i + 1; j < channels.Length; j++)
                worst = Math.Max(worst, corr[i, j].item<float>());
        output.WriteLine($"largest pairwise correlation between the 8 images: {worst:0.000}");
        Assert.True(worst < 0.5, $"two channel images correlate at {worst:0.000}");
    }

    [Fact]
    public void Bfloat16VisualizationExcitesTheChannelLikeFloat32()
    {
        using var scope = NewDisposeScope();
        using var bf16 = OnnxNetwork.Load(Paths.GoogLeNet, "googlenet", BvlcGoogLeNet.Spec);
        bf16.To(CPU, ScalarType.BFloat16);
        string t = Net.ResolveLayer(Layer);
        var options = new VisualizeOptions { Steps = 64, Seed = 3 };
        var f32 = new FeatureVisualizer(Net, new ChannelObjective(t, 97, Layer), options).Run();
        var reduced = new FeatureVisualizer(bf16, new ChannelObjective(t, 97, Layer), options with { BFloat16 = true }).Run();
        Assert.Equal(ScalarType.Float32, reduced.dtype);
        double gray = MeanActivation(full(1, 3, 224, 224, S(0.5f)), 97), a = MeanActivation(f32, 97), b = MeanActivation(reduced, 97);
        output.WriteLine($"channel 97 (measured in fp32): mid-gray {gray:G3}, fp32 run {a:G3}, bf16 run {b:G3}");
        Assert.True(b >= 10 * Math.Max(gray, 0.05), $"bf16 run reached {b:G3} from {gray:G3}");
        Assert.True(b >= 0.8 * a, $"bf16 run reached {b:G3}, fp32 {a:G3}");
    }

    [Fact]
    public void DiversityMakesABatchLessAlike()
    {
        using var scope = NewDisposeScope();
        string t = Net.ResolveLayer(Layer);
        var options = new VisualizeOptions { Batch = 4, Steps = 48, Seed = 5 };
        Objective channel = new ChannelObjective(t, 97, Layer);
        var plain = new FeatureVisualizer(Net, channel, options).Run();
        var diverse = new FeatureVisualizer(Net, channel + 100.0 * new DiversityObjective(t, Layer), options).Run();
        double Similarity(Tensor images) { using var s = NewDisposeScope(); using var ng = no_grad(); return DiversityObjective.Similarity(Net.Forward(images, [t])[t]).item<float>(); }
        double a = Similarity(plain), b = Similarity(diverse);
        output.WriteLine($"pairwise Gram similarity: without diversity {a:0.000}, with {b:0.000}");
        Assert.True(b < a, $"diversity did not lower the similarity ({a:0.000} -> {b:0.000})");
    }

    [Theory]
    [InlineData("inception_4a/output:97 - * 0.5", "position 26 ('* 0.5')")]
    [InlineData("inception_4a/output:97 + (conv2/3x3", "expected ')'")]
    [InlineData("2 * 3", "only a number")]
    [InlineData("inception_4a/output:9999", "channels 0-511")]
    [InlineData("inception_4x/output:3", "nearest: inception_4a/output")]
    public void MalformedExpressionsPointAtThePosition(string expr, string expected)
    {
        var e = Assert.Throws<BadInputException>(() => ObjectiveLanguage.Parse(Net, expr));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UnknownClassSuggestsNearestNames()
    {
        var e = Assert.Throws<BadInputException>(() => ObjectiveLanguage.Parse(Net, "class:expresso"));
        Assert.Contains("unknown class 'expresso'", e.Message);
        Assert.Contains("espresso", e.Message);
        var ok = ObjectiveLanguage.Parse(Net, "class:tiger_cat:prob + 0.5*class:281");
        Assert.Equal("class:tiger cat:prob + 0.5*class:tabby", ok.Describe());
    }
}

/// <summary>Dreaming toward a target output: the extrapolation failure.</summary>
public class TargetDreamTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    [Fact]
    public void NoiseBecomesConfidentlyAClassWhileStillLookingLikeNoise()
    {
        using var scope = NewDisposeScope();
        var net = model.Net;
        var noise = rand(new long[] { 1, 3, 224, 224 }, generator: new Generator(11));
        int goldfish = net.Labels!.ToList().IndexOf("goldfish");
        var (image, p, steps) = TargetDream.Run(net, goldfish, 0.999, noise, new TargetDreamOptions { StopAt = 0.99 });
        double before = TargetDream.HighFrequencyEnergy(noise), after = TargetDream.HighFrequencyEnergy(image);
        output.WriteLine($"p(goldfish) {p:0.0000} after {steps} steps; high-frequency energy {before:G3} -> {after:G3}");
        ImageIO.Save(image, Path.Combine(Path.GetTempPath(), "reverie-goldfish-noise.png"));
        Assert.True(p >= 0.99, $"p(goldfish) reached only {p:0.0000}");
        Assert.True(after >= 0.5 * before, $"the image lost its noise: {before:G3} -> {after:G3}");
    }
}

/// <summary>Representation inversion: reconstructions lose the photo with depth.</summary>
public class InversionTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    static Tensor Photo() => ImageIO.Resize(ImageIO.Load(Paths.Sample("chelsea.png")), 224, 224);

    [Fact]
    public void Conv2ReconstructionIsClose()
    {
        using var scope = NewDisposeScope();
        var photo = Photo();
        var (image, loss) = Inversion.Run(model.Net, "conv2/3x3", photo, new InversionOptions { Steps = 200 });
        double psnr = Reverie.Imaging.Filters.Psnr(image, photo);
        output.WriteLine($"conv2/3x3: feature loss {loss:0.000}, PSNR {psnr:0.0} dB, SSIM {Inversion.Ssim(image, photo):0.000}");
        Assert.True(psnr >= 16, $"PSNR {psnr:0.0} dB");
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void PsnrFallsWithDepth()
    {
        using var scope = NewDisposeScope();
        var photo = Photo();
        // Six layers from conv1 to inception_5b (all eleven, 150 steps each, gave 29.4, 21.5, 17.8, 16.6,
        // 15.6, 15.6, 15.4, 15.4, 15.4, 15.3, 15.1 dB: monotone).
        string[] layers = ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_4a/output", "inception_4d/output", "inception_5b/output"];
        var psnr = new List<double>();
        foreach (var l in layers)
        {
            var (image, loss) = Inversion.Run(model.Net, l, photo, new InversionOptions { Steps = 80 });
            psnr.Add(Reverie.Imaging.Filters.Psnr(image, photo));
            output.WriteLine($"{l}: feature loss {loss:0.000}, PSNR {psnr[^1]:0.0} dB");
        }
        // Spearman rank correlation between depth and PSNR.
        var ranks = psnr.Select(p => psnr.Count(q => q < p) + 0.5 * (psnr.Count(q => q == p) - 1) + 1).ToList();
        int n = layers.Length;
        double meanR = (n + 1) / 2.0;
        double cov = Enumerable.Range(0, n).Sum(i => (i + 1 - meanR) * (ranks[i] - meanR));
        double sd = Math.Sqrt(Enumerable.Range(0, n).Sum(i => Math.Pow(i + 1 - meanR, 2)) * ranks.Sum(r => Math.Pow(r - meanR, 2)));
        double rho = cov / sd;
        output.WriteLine($"Spearman(depth, PSNR) = {rho:0.00}");
        Assert.True(rho <= -0.8, $"Spearman {rho:0.00}");
    }
}

/// <summary>The direction objective: a one-hot direction is that channel's mean.</summary>
public class DirectionObjectiveTests(BvlcGoogLeNet model) : IClassFixture<BvlcGoogLeNet>
{
    [Fact]
    public void OneHotDirectionEqualsTheChannelAndMixesLinearly()
    {
        using var scope = NewDisposeScope();
        using var tmp = Paths.Temp();
        var net = model.Net;
        var d = new float[512];
        d[97] = 1;
        File.WriteAllText(tmp.File("d97.txt"), string.Join(",", d));
        d[97] = 0.5f; d[12] = -2;
        File.WriteAllText(tmp.File("mix.txt"), string.Join(" ", d));
        var parser = new ObjectiveLanguage(net);
        var image = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 224, 224);
        string t = net.ResolveLayer("inception_4a/output");
        using var noGrad = no_grad();
        var acts = net.Forward(image, [t]);
        double Value(string expr) => parser.Parse(expr).Evaluate(acts).item<float>();
        Assert.Equal(Value("inception_4a/output:97"), Value($"direction:inception_4a/output@{tmp.File("d97.txt")}"), 4);
        Assert.Equal(0.5 * Value("inception_4a/output:97") - 2 * Value("inception_4a/output:12"), Value($"direction:inception_4a/output@{tmp.File("mix.txt")}"), 3);
        File.WriteAllText(tmp.File("short.txt"), "1,2,3");
        var e = Assert.Throws<BadInputException>(() => Value($"direction:inception_4a/output@{tmp.File("short.txt")}"));
        Assert.Contains("512 channels", e.Message);
    }
}
