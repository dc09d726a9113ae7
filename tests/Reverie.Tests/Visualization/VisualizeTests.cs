using Reverie.Imaging;
using Reverie.Models;
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
        var objective = new ObjectiveParser(Net).Parse("class:espresso");
        var image = new FeatureVisualizer(Net, objective, new VisualizeOptions { Steps = 512 }).Run();
        ImageIO.Save(image, Path.Combine(Path.GetTempPath(), "reverie-espresso.png"));
        float p;
        using (no_grad()) p = Net.Probabilities(image)[0, 967].item<float>();
        output.WriteLine($"p(espresso) = {p:0.0000}");
        Assert.Equal("espresso", Net.Labels![967]);
        Assert.True(p >= 0.9f, $"p(espresso) = {p}");
    }
}
