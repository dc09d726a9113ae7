using Reverie.Dreaming;
using Reverie.Explaining;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models.Registry;
using Reverie.Optimization;
using Reverie.Recipes;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Explaining;

/// <summary><c>reverie activations</c> on BVLC GoogLeNet: the right channels, visualizations that drive them, the cache.</summary>
public class ActivationsTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    [Fact]
    public async Task TheMostActiveChannelsWithVisualizationsThatDriveThemMadeOnceThenCached()
    {
        using var tmp = Paths.Temp();
        var registry = new ModelRegistry(tmp.File("cache"), tmp.File("models.json"));
        registry.Add("bvlc", Paths.GoogLeNet, BvlcGoogLeNet.Spec); // the fixture's network, by name
        var options = new ActivationsJobOptions
        {
            Image = Paths.Sample("coffee.png"), Layer = "inception_4c/output", Top = 4, Model = "bvlc", Seed = 3,
            Visualize = new Reverie.Visualization.VisualizeOptions { Size = 96, Steps = 48 },
        };
        var job = new ActivationsJob();
        async Task<(ActivationsResults Results, string Output)> Run(string name)
        {
            var context = new JobContext { Output = tmp.File(name), Recipe = JobCatalog.RecipeFor(job, options), Registry = registry };
            var r = await job.RunAsync(options, context);
            return (Assert.IsType<ActivationsResults>(r.Results), context.Output);
        }
        var (first, out1) = await Run("a.png");
        foreach (var a in first.Top) output.WriteLine($"channel {a.Channel}: mean {a.Mean:G4} ({a.Z:+0.0} σ), max {a.Max:G4}");

        // The same channels, in the same order, as the dream's --nodes-of picks; means falling, all above the layer's.
        var net = model.Net;
        string layer = net.ResolveLayer(options.Layer);
        using var photo = ImageIO.Load(options.Image);
        Assert.Equal(DreamJob.MostActiveChannels(net, layer, photo, 4), first.Top.Select(a => a.Channel).ToList());
        Assert.True(first.Top.Zip(first.Top.Skip(1)).All(p => p.First.Mean >= p.Second.Mean));
        Assert.All(first.Top, a => Assert.True(a.Z > 1, $"channel {a.Channel} only {a.Z:0.0} σ above the layer's mean"));
        Assert.All(first.Top, a => Assert.False(a.CachedVisualization));

        // Each cached visualization drives its own channel harder than the photo does, and harder than the other three's.
        var files = Directory.GetFiles(first.VisualizationCache, "*.png").OrderBy(f => f).ToList();
        Assert.Equal(4, files.Count);
        foreach (var a in first.Top)
        {
            using var scope = NewDisposeScope();
            string file = Path.Combine(first.VisualizationCache, $"{a.Channel}-s96-n48-seed3.png");
            var drive = new Dictionary<int, double>();
            foreach (var other in first.Top)
            {
                // At the size it was made (the layer is convolutional; the network stops there).
                var viz = ImageIO.Load(Path.Combine(first.VisualizationCache, $"{other.Channel}-s96-n48-seed3.png"));
                using (no_grad()) drive[other.Channel] = Capture.Features(net, viz, [layer])[layer][0, a.Channel].mean().item<float>();
            }
            output.WriteLine($"channel {a.Channel}: photo {a.Mean:G4}, its visualization {drive[a.Channel]:G4}, the others' {string.Join(", ", drive.Where(d => d.Key != a.Channel).Select(d => d.Value.ToString("G4")))}");
            Assert.True(drive[a.Channel] > a.Mean, $"channel {a.Channel}: its visualization drives it to {drive[a.Channel]:G4}, the photo to {a.Mean:G4}");
            Assert.Equal(drive.Values.Max(), drive[a.Channel]);
        }

        // The second run takes every visualization from the cache and draws the same picture (but for the word "cached").
        var stamps = files.ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var (second, out2) = await Run("b.png");
        Assert.All(second.Top, a => Assert.True(a.CachedVisualization));
        Assert.All(files, f => Assert.Equal(stamps[f], File.GetLastWriteTimeUtc(f)));
        using var p1 = ImageIO.Load(out1);
        using var p2 = ImageIO.Load(out2);
        double changed = (p1 - p2).abs().amax([1]).gt(S(0)).to(ScalarType.Float32).mean().item<float>();
        output.WriteLine($"pixels that differ between the two runs' pictures: {100 * changed:0.000}%");
        Assert.InRange(changed, 1e-6, 0.005);
        Assert.Equal("activations", Recipe.Load(out2).Command);
    }
}
