using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Recipes;
using Reverie.Science;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Science;

/// <summary>
/// The shortcut experiment: a network trained where a stamp's colour gives the label away reads the
/// stamp, and the explanation maps say so; without the cue they point at the shapes; maps of a
/// network trained on permuted labels differ from those of one trained on true labels.
/// </summary>
public class ShortcutTests(ITestOutputHelper output)
{
    [Fact]
    public void TheShapesAreWhatTheLabelsSayAndTheStampFollowsTheCue()
    {
        var matched = new CuedShapes(64, 7, Cue.Matched);
        var random = matched.With(Cue.Random);
        var swapped = matched.With(Cue.Swapped);
        int stamp = matched.Stamp;
        Assert.Equal(12, stamp);
        using var a = matched.Images(Enumerable.Range(0, 64).ToArray());
        using var b = swapped.Images(Enumerable.Range(0, 64).ToArray());
        // Outside the stamp the images are the same under every cue; inside, the colour is the class's (or another's).
        Assert.Equal(0, (a - b).abs()[.., .., stamp.., ..].max().item<float>());
        Assert.Equal(0, (a - b).abs()[.., .., .., stamp..].max().item<float>());
        var colours = Enumerable.Range(0, 64).Select(i => random.StampClass(i)).ToList();
        for (int i = 0; i < 64; i++)
        {
            Assert.Equal(i % 4, matched.Label(i));
            Assert.Equal(matched.Label(i), matched.StampClass(i));
            Assert.NotEqual(matched.Label(i), swapped.StampClass(i));
            var rgb = a[i, .., 2, 2].data<float>().ToArray();
            Assert.Equal(CuedShapes.Colours[i % 4], rgb);
        }
        // The random stamps use every colour and do not follow the class.
        Assert.Equal(4, colours.Distinct().Count());
        Assert.True(colours.Where((c, i) => c == i % 4).Count() < 32);
        // The shape region holds the drawn shape: its pixels differ from the ground around them.
        using var regions = matched.Regions(0);
        Assert.Equal(stamp * stamp, regions[0].sum().item<float>());
        double area = regions[1].mean().item<float>();
        Assert.InRange(area, 0.03, 0.3);
        ImageIO.Save(Grid.Make([a[..8], b[..8]], 8), Path.Combine(Path.GetTempPath(), "reverie-cued-shapes.png"));
    }

    [Fact]
    [Trait("Category", "Slow")]
    public async Task TheCueIsLearnedAndTheMapsShowItWhileWithoutTheCueTheyShowTheShapes()
    {
        using var tmp = Paths.Temp();
        var options = new ShortcutJobOptions { Seed = 1 };
        var job = new ShortcutJob();
        var context = new JobContext { Output = tmp.File("shortcut.png"), Recipe = JobCatalog.RecipeFor(job, options) };
        var result = await job.RunAsync(options, context);
        var r = Assert.IsType<ShortcutResults>(result.Results);
        foreach (var n in r.Networks)
            output.WriteLine($"{n.Name}: matched {100 * n.Matched:0.0}%, random {100 * n.Random:0.0}%, swapped {100 * n.Swapped:0.0}%");
        foreach (var m in r.Methods)
            output.WriteLine($"{m.Title}: stamp {m.StampWithCue:0.000} / {m.StampWithoutCue:0.000}, shape {m.ShapeWithCue:0.000} / {m.ShapeWithoutCue:0.000}, ρ labels {m.LabelRandomization:0.000}");
        var cue = r.Networks[0];
        var fair = r.Networks[1];
        // (a) Trained with the cue: right when the stamp agrees, at least 40 points worse when it lies.
        Assert.True(cue.Matched > 0.95, $"with the cue, matched accuracy {cue.Matched}");
        Assert.True(cue.Matched - cue.Swapped >= 0.40, $"swapping the stamp cost only {100 * (cue.Matched - cue.Swapped):0.0} points");
        // Without the cue the network learned the shapes: the stamp does not matter.
        Assert.True(fair.Matched > 0.8 && Math.Abs(fair.Matched - fair.Swapped) < 0.1, $"without the cue: matched {fair.Matched}, swapped {fair.Swapped}");
        // (b) With the cue, at least two methods put over 60% of their mass on the stamp (3.5% of the area):
        // the two that hide parts of the image (occlusion, LIME with gray fill). Without it, every method puts under 30% there.
        var onStamp = r.Methods.Where(m => m.StampWithCue > 0.6).Select(m => m.Method).ToList();
        Assert.True(onStamp.Count >= 2, $"only {string.Join(", ", onStamp)} put over 60% on the stamp");
        Assert.All(r.Methods, m => Assert.True(m.StampWithoutCue < 0.3, $"{m.Method} puts {m.StampWithoutCue:0.00} on the stamp without the cue"));
        // The gradient methods spread over the textured ground, but still point at the stamp: over 3 times its
        // share of the area with the cue, and 5 times what they put there without it.
        foreach (var name in new[] { "saliency", "gradxinput", "smoothgrad", "ig" })
        {
            var m = r.Methods.Single(x => x.Method == name);
            Assert.True(m.StampWithCue > 3 * r.StampArea && m.StampWithCue > 5 * m.StampWithoutCue, $"{name}: {m.StampWithCue:0.000} on the stamp with the cue, {m.StampWithoutCue:0.000} without");
        }
        // Label randomization: Grad-CAM's and the gradient's maps change (Spearman below 0.5).
        foreach (var name in new[] { "gradcam", "saliency" })
        {
            var m = r.Methods.Single(x => x.Method == name);
            Assert.True(m.LabelRandomization < 0.5, $"{name}: ρ {m.LabelRandomization} between true and permuted labels");
        }
        // The pictures exist, with the recipe in the sheet.
        Assert.Equal(2, result.Files.Count);
        Assert.All(result.Files, f => Assert.True(new FileInfo(f).Length > 20_000, f));
        Assert.Equal("science-shortcut", Recipe.Load(context.Output).Command);
        foreach (var f in result.Files) File.Copy(f, Path.Combine(Path.GetTempPath(), "reverie-" + Path.GetFileName(f)), overwrite: true);
    }
}
