using Reverie.Objectives;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Dreaming;

/// <summary>One BVLC GoogLeNet shared by the dream tests of a class.</summary>
public sealed class BvlcGoogLeNet : IDisposable
{
    public static readonly InputSpec Spec = new() { Channels = ChannelOrder.Bgr, Scale = 255, Mean = [123.68f, 116.779f, 103.939f] };
    internal OnnxNetwork Net { get; } = OnnxNetwork.Load(Paths.GoogLeNet, "googlenet", Spec, Reverie.Models.Registry.Labels.ImageNet);
    public void Dispose() => Net.Dispose();
}

/// <summary>DeepDream on BVLC GoogLeNet, the network of the original DeepDream.</summary>
public class DeepDreamTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;

    static Tensor Photo(int maxSide)
    {
        var p = ImageIO.Load(Paths.Sample("coffee.png"));
        double f = (double)maxSide / Math.Max(p.shape[2], p.shape[3]);
        return f < 1 ? ImageIO.Resize(p, (int)Math.Round(p.shape[2] * f), (int)Math.Round(p.shape[3] * f)) : p;
    }

    double L2(Tensor image, string layer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var t = Net.ResolveLayer(layer);
        return new LayerL2(t).Evaluate(Net.Forward(image, [t])).item<float>();
    }

    [Fact]
    public void DreamingRaisesTheLayerObjectiveFiveFold()
    {
        using var scope = NewDisposeScope();
        var photo = Photo(600);
        var dream = new DeepDream(Net, new LayerL2(Net.ResolveLayer("inception_4c/output")), new DreamOptions());
        var result = dream.Run(photo);
        double before = L2(photo, "inception_4c/output"), after = L2(result, "inception_4c/output");
        output.WriteLine($"inception_4c/output L2: {before:G4} -> {after:G4} ({after / before:0.0}x)");
        Assert.Equal(photo.shape, result.shape);
        Assert.True(after >= 5 * before, $"objective rose only {after / before:0.00}x");
        Assert.True(result.min().item<float>() >= 0 && result.max().item<float>() <= 1);
    }

    /// <summary>
    /// Lower layers change texture, higher layers add object parts: a dream at conv2/3x3 excites
    /// conv2/3x3 more than a dream at inception_4c does, and a dream at inception_4c excites the
    /// object-level layer inception_5b more than a dream at conv2/3x3 does.
    /// </summary>
    [Fact]
    public void LowLayersDreamTexturesHighLayersDreamParts()
    {
        using var scope = NewDisposeScope();
        var photo = Photo(300);
        var low = new DeepDream(Net, new LayerL2(Net.ResolveLayer("conv2/3x3")), new DreamOptions { Octaves = 3 }).Run(photo);
        var high = new DeepDream(Net, new LayerL2(Net.ResolveLayer("inception_4c/output")), new DreamOptions { Octaves = 3 }).Run(photo);
        double Gain(Tensor img, string layer) => L2(img, layer) / L2(photo, layer);
        double lowAtLow = Gain(low, "conv2/3x3"), highAtLow = Gain(high, "conv2/3x3");
        double lowAtTop = Gain(low, "inception_5b/output"), highAtTop = Gain(high, "inception_5b/output");
        output.WriteLine($"conv2/3x3 gain: texture dream {lowAtLow:0.00}x, parts dream {highAtLow:0.00}x; inception_5b gain: texture dream {lowAtTop:0.00}x, parts dream {highAtTop:0.00}x");
        Assert.True(lowAtLow > highAtLow, "the conv2/3x3 dream did not excite conv2/3x3 more than the inception_4c dream");
        Assert.True(highAtTop > lowAtTop, "the inception_4c dream did not excite inception_5b more than the conv2/3x3 dream");
    }

    [Fact]
    public void TiledAndUntiledDreamsAgree()
    {
        using var scope = NewDisposeScope();
        var photo = ImageIO.Resize(ImageIO.Load(Paths.Sample("astronaut.png")), 640, 640);
        var options = new DreamOptions { Octaves = 2, Steps = 5, Seed = 3 };
        var whole = new DeepDream(Net, new LayerL2(Net.ResolveLayer("inception_3b/output")), options with { Tile = 0 }).Run(photo);
        var tiled = new DeepDream(Net, new LayerL2(Net.ResolveLayer("inception_3b/output")), options with { Tile = 256, TileMargin = 64 }).Run(photo);
        double psnr = Filters.Psnr(whole, tiled), change = Filters.Psnr(whole, photo);
        output.WriteLine($"tiled vs untiled PSNR {psnr:0.0} dB; the dream's change {change:0.0} dB");
        Assert.True(change < 35, "the dream did not change the image");
        Assert.True(psnr >= 30, $"tiled and untiled differ: PSNR {psnr:0.0} dB");
    }

    [Fact]
    public void GuidedDreamFollowsTheGuide()
    {
        using var scope = NewDisposeScope();
        var photo = Photo(320);
        var guideImage = ImageIO.Load(Paths.Sample("chelsea.png"));
        string layer = Net.ResolveLayer("inception_4c/output");
        var guide = GuideObjective.Of(Net, layer, guideImage);
        double GuideValue(Tensor img) { using var s = NewDisposeScope(); using var ng = no_grad(); return guide.Evaluate(Net.Forward(img, [layer])).item<float>(); }
        var options = new DreamOptions { Octaves = 3, Seed = 1 };
        var guided = new DeepDream(Net, guide, options).Run(photo);
        var plain = new DeepDream(Net, new LayerL2(layer), options).Run(photo);
        double before = GuideValue(photo), after = GuideValue(guided);
        double diff = Filters.Psnr(guided, plain);
        output.WriteLine($"guide objective {before:G4} -> {after:G4}; guided vs unguided PSNR {diff:0.0} dB");
        Assert.True(after > 2 * before, "the guide objective did not rise");
        Assert.True(diff < 25, "the guided dream looks like the unguided one");
    }

    /// <summary>
    /// <c>dream --nodes-of</c> (issue 18): the channels a guide image (the cat) activates most are
    /// the ones that rise in another photo, at least three times more (mean activation) than the
    /// layer's other channels, on two photos.
    /// </summary>
    [Theory]
    [InlineData("coffee.png")]
    [InlineData("rocket.jpg")]
    public void NodesOfRaisesTheGuidesChannelsMoreThanTheRest(string photoName)
    {
        using var scope = NewDisposeScope();
        var full = ImageIO.Load(Paths.Sample(photoName));
        var photo = Capture.Shrink(full, 320);
        string layer = Net.ResolveLayer("inception_4c/output");
        var options = new DreamJobOptions { Input = Paths.Sample(photoName), NodesOf = Paths.Sample("chelsea.png"), NodesTop = 8, Dream = new DreamOptions { Octaves = 3, Seed = 1 } };
        var objective = DreamJob.BuildObjective(Net, options);
        var chosen = ((LayerL2)objective).Channels!;
        using (var cat = ImageIO.Load(Paths.Sample("chelsea.png")))
            Assert.Equal(DreamJob.MostActiveChannels(Net, layer, cat, 8), chosen);
        var result = new DeepDream(Net, objective, options.Effective).Run(photo);
        Tensor Means(Tensor img) { using var ng = no_grad(); return Net.Forward(img, [layer])[layer][0].flatten(1).mean([1]); }
        var rise = Means(result) - Means(photo);
        var mask = zeros(rise.shape[0], dtype: ScalarType.Bool);
        foreach (int ch in chosen) mask[ch] = true;
        double inChosen = rise.masked_select(mask).mean().item<float>(), others = rise.masked_select(mask.logical_not()).mean().item<float>();
        output.WriteLine($"{photoName}: channels {string.Join(",", chosen)} of inception_4c/output rose {inChosen:G4} on average, the other {rise.shape[0] - chosen.Count} {others:G4} ({inChosen / others:0.0}x)");
        Assert.True(inChosen > 0 && inChosen >= 3 * Math.Max(others, 0), $"chosen channels rose {inChosen:G4}, the others {others:G4}");
    }
}
