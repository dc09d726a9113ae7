using Reverie.Imaging;
using Reverie.Style;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Style;

/// <summary>Gatys style transfer styles by default on networks other than VGG (issue 22).</summary>
public sealed class GatysDefaultsTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    (StyleStrength Kept, StyleStrength Square, StyleLosses Last) Run(StyleOptions options)
    {
        using var scope = NewDisposeScope();
        var content = ImageIO.Load(Paths.Sample("coffee.png"));
        var style = ImageIO.Load(Paths.Sample("hubble_deep_field.jpg"));
        var o = options.WithDefaultLayers(model.Net);
        var transfer = new StyleTransfer(model.Net, content, [(style, 1.0)], o);
        var result = transfer.Run();
        return (StyleStrength.Measure(model.Net, result, content, style, o), StyleStrength.Measure(model.Net, result, content, style, o, square: true), transfer.History[^1]);
    }

    /// <summary>
    /// coffee.png in the style of the Hubble deep field at 256 px, 100 L-BFGS iterations, on BVLC GoogLeNet:
    /// the defaults (normalized terms) against neural-style's raw terms, which were the defaults before
    /// and whose TV term swamps the rest on this network.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void TheDefaultsStyleGoogLeNetWhileTheCupStaysRecognizable()
    {
        var before = Run(new StyleOptions { Size = 256, Steps = 100, LossScale = "neural-style" });
        var now = Run(new StyleOptions { Size = 256, Steps = 100 });
        foreach (var (name, r) in new[] { ("neural-style terms (before)", before), ("normalized terms (default)", now) })
            output.WriteLine($"{name}: Gram distance ratio {r.Kept.GramRatio:0.000} (stretched to 256x256: {r.Square.GramRatio:0.000}), content distance {r.Kept.ContentDistance:0.000}; " +
                             $"losses content {r.Last.Content:G3}, style {r.Last.Style:G3}, tv {r.Last.Tv:G3}");
        Assert.True(now.Kept.GramRatio <= 0.3, $"Gram distance ratio {now.Kept.GramRatio:0.000}");
        Assert.True(now.Kept.ContentDistance <= 2 * before.Kept.ContentDistance, $"content distance {now.Kept.ContentDistance:0.000} against {before.Kept.ContentDistance:0.000} before");
        Assert.True(now.Kept.GramRatio < before.Kept.GramRatio / 1.5, "no stronger than before");
    }
}
