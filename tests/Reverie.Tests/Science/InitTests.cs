using Reverie.Objectives;
using Reverie.Optimization;
using Reverie.Science;
using Reverie.Style;
using static TorchSharp.torch;

namespace Reverie.Tests.Science;

/// <summary>Seeded initialization does not depend on torch's global generator.</summary>
public class InitTests
{
    static float[] Flat(nn.Module m) => m.parameters().SelectMany(p => p.detach().flatten().data<float>().ToArray()).ToArray();

    [Fact]
    public void ResetIsDeterministicAndIgnoresTheGlobalGenerator()
    {
        using var a = new SciNet();
        using var b = new SciNet();
        random.manual_seed(1); rand(10);          // whatever the global generator did...
        Init.Reset(a, 7);
        random.manual_seed(99); rand(1000);
        Init.Reset(b, 7);
        Assert.Equal(Flat(a), Flat(b));          // ...the same seed gives the same weights
        Init.Reset(b, 8);
        Assert.NotEqual(Flat(a), Flat(b));
        // Bounds: the first layer has fan-in 2, so weights lie in ±1/√2; the step starts at 0.
        var first = a.named_parameters().First(q => q.name == "encoder.0.weight").parameter;
        Assert.True(first.abs().max().item<float>() <= 1 / Math.Sqrt(2) + 1e-6);
        Assert.True(first.abs().max().item<float>() > 0.5);
        Assert.Equal(0f, a.Step.abs().sum().item<float>());

        using var t = new TransformerNet();
        Init.Reset(t, 3);
        foreach (var (name, p) in t.named_parameters().Where(q => q.name.StartsWith("norms") && q.name.EndsWith("weight")))
            Assert.Equal(1f, p.min().item<float>());
    }
}
