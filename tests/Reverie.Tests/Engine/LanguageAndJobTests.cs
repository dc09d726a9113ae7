using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Recipes;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Engine;

/// <summary>The one objective language and the job model.</summary>
public class LanguageAndJobTests(BvlcGoogLeNet model) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;

    [Fact]
    public void OneMeaningOfLayerColonChannelEverywhere()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var image = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 224, 224);
        string t = Net.ResolveLayer("inception_4a/output");
        var acts = Net.Forward(image, [t]);
        double Value(string expr) => ObjectiveLanguage.Parse(Net, expr).Evaluate(acts).item<float>();
        var a = acts[t];
        // Float32 sums of thousands of values, reduced in an order that depends on libtorch's threads: equal to 1e-5 of their size.
        static void Same(double expected, double actual) => Assert.Equal(expected, actual, 1e-5 * Math.Max(1, Math.Abs(expected)));
        // LAYER:C is channel C's mean; l2(LAYER:CHANNELS) half the mean square of those channels; LAYER the whole layer's.
        Same(a[.., 12].mean().item<float>(), Value("inception_4a/output:12"));
        Same(a[.., 3..6].pow(S(2)).mean().item<float>() * 0.5, Value("l2(inception_4a/output:3-5)"));
        Same(a.pow(S(2)).mean().item<float>() * 0.5, Value("inception_4a/output"));
        Same(2 * Value("inception_4a/output:12") - Value("l2(inception_4a/output:3,4,5)"), Value("2*inception_4a/output:12 - l2(inception_4a/output:3-5)"));
        Assert.Equal("l2(inception_4a/output:3-5)", ObjectiveLanguage.Parse(Net, "l2(inception_4a/output:3,4,5)").Describe());
        // max(LAYER:C): the channel's strongest response, above its mean.
        Assert.Equal(a[.., 12].max().item<float>(), Value("max(inception_4a/output:12)"), 4);
        Assert.True(Value("max(inception_4a/output:12)") > Value("inception_4a/output:12"));
        Assert.Contains("max(LAYER:C)", Assert.Throws<BadInputException>(() => ObjectiveLanguage.Parse(Net, "max(inception_4a/output)")).Message);
    }

    [Theory]
    [InlineData("inception_4a/output:3-5", "l2(inception_4a/output:3-5)")]
    [InlineData("1e400*inception_4a/output", "not a finite number")]
    [InlineData("blur(inception_4a/output)", "is not a function")]
    [InlineData("l2(inception_4a/output:600)", "channels 0-511")]
    [InlineData("tv(-1)", "tv(V) needs V above 0")]
    [InlineData("inception_4a/output:3@900,2", "outside layer")]
    [InlineData("", "The objective is empty")]
    public void MistakesAreOneSentence(string expr, string expected)
    {
        var e = Assert.Throws<BadInputException>(() => ObjectiveLanguage.Parse(Net, expr));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void TheOldDreamLayerFormIsRefusedWithItsNewSpelling()
    {
        var e = Assert.Throws<BadInputException>(() => new ObjectiveLanguage(Net).ParseDreamLayer("inception_3b/output:0-31*2"));
        Assert.Contains("--layer 'l2(inception_3b/output:0-31)*2'", e.Message);
        var ok = new ObjectiveLanguage(Net).ParseDreamLayer("l2(inception_3b/output:0-31)*2");
        Assert.Equal("2*l2(inception_3b/output:0-31)", ok.Describe());
    }

    [Fact]
    public void AnOptionsRecordIsItsRecipeAndComesBackEqual()
    {
        using var tmp = Paths.Temp();
        string photo = tmp.File("p.png");
        File.Copy(Paths.Sample("chelsea.png"), photo);
        var options = new DreamJobOptions
        {
            Input = photo, Model = "googlenet", Seed = 5, Precision = Precision.Bf16, Layers = ["inception_4c/output", "l2(conv2/3x3:0-7)*0.5"],
            Zoom = 3, Dream = new DreamOptions { Octaves = 3, StepSize = 2.5, KeepColors = true },
        };
        var recipe = JobCatalog.RecipeFor(new DreamJob(), options);
        Assert.Equal("bf16", (string)recipe.Options!["precision"]!);
        Assert.Equal(5, (int)recipe.Options["seed"]!);
        Assert.Null(recipe.Options["dream"]!["seed"]); // held once, at the job's level
        Assert.Equal(Reverie.Models.Registry.Downloader.Sha256Of(photo), recipe.Inputs[photo]);
        var back = Recipe.FromJson(recipe.ToJson(), "test");
        var (job, again) = JobCatalog.FromRecipe(back, "test");
        Assert.Equal("dream", job.Kind);
        var d = Assert.IsType<DreamJobOptions>(again);
        Assert.Equal(options.Layers, d.Layers);
        Assert.Equal(options with { Layers = d.Layers }, d);
        Assert.Equal(options.Effective, d.Effective);
    }

    [Fact]
    public void ARecipeOfAnotherShapeIsRefusedInOneSentence()
    {
        var recipe = new Recipe { Command = "dream", Options = JsonNode.Parse("""{"input":"/x.png","octaves":4}""")!.AsObject() };
        var e = Assert.Throws<BadInputException>(() => JobCatalog.FromRecipe(recipe, "old.png"));
        Assert.Contains("do not fit a dream job", e.Message);
        var unknown = new Recipe { Command = "paint", Options = new JsonObject() };
        Assert.Contains("not a job", Assert.Throws<BadInputException>(() => JobCatalog.FromRecipe(unknown, "x")).Message);
        Assert.Contains("readable Reverie recipe", Assert.Throws<BadInputException>(() => Recipe.FromJson("{\"command\": [", "y.json")).Message);
        // A report (JSON without a command) is named for what it is, with no .NET type in the sentence.
        var report = Assert.Throws<BadInputException>(() => Recipe.FromJson("{\"model\": \"fashion\", \"rows\": []}", "report.json")).Message;
        Assert.Contains("not a recipe", report);
        Assert.DoesNotContain("Reverie.Recipes", report);
        Assert.DoesNotContain("type '", report);
    }

    [Fact]
    public async Task AJobReportsStepsTermsAndPreviewsAndHonoursCancellation()
    {
        using var tmp = Paths.Temp();
        var events = new List<JobEvent>();
        int previews = 0;
        using var cts = new CancellationTokenSource();
        var sink = new Sink(e =>
        {
            events.Add(e with { Preview = null });
            if (e.Preview is { } p) { previews++; Assert.Equal(3, p.shape[1]); }
            if (events.Count(x => x.Kind == JobEventKind.Progress) == 7) cts.Cancel();
        });
        string photo = tmp.File("p.png");
        using (var img = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 96, 128)) ImageIO.Save(img, photo);
        var options = new DreamJobOptions { Input = photo, Model = Paths.GoogLeNet, Dream = new DreamOptions { Octaves = 2, Steps = 5 } };
        var job = new DreamJob();
        var context = new JobContext
        {
            Output = tmp.File("out.png"), Recipe = JobCatalog.RecipeFor(job, options), Events = sink, PreviewEvery = 2, Cancel = cts.Token,
        };
        var result = await job.RunAsync(options, context);
        var steps = events.Where(e => e.Kind == JobEventKind.Progress).ToList();
        Assert.True(result.Interrupted);
        Assert.Equal(7, steps.Count);
        Assert.Equal(Enumerable.Range(1, 7).Select(i => (long)i), steps.Select(s => s.Step));
        Assert.All(steps, s => Assert.Equal(10, s.Total));
        Assert.Equal("octave 2/2 step 2/5", steps[^1].Stage);
        Assert.True(previews >= 3, $"{previews} previews"); // steps 2, 4, 5 (the octave's end), 6
        var saved = Recipe.Load(context.Output);
        Assert.True(saved.Interrupted);
        Assert.Equal(7, saved.Steps);
        using var dream = ImageIO.Load(context.Output);
        Assert.Equal(128, dream.shape[3]);
    }

    public static TheoryData<string> AttackMethodNames => [.. Reverie.Adversarial.AttackMethods.Entries.Select(e => e.Name)];

    [Theory]
    [MemberData(nameof(AttackMethodNames))]
    public async Task EveryAttackMethodRunsAsAJobThatSendsPreviews(string name)
    {
        // The studio asks for a preview every other step. DeepFool and C&W used to report steps without an
        // image, and their studio jobs failed at the first preview with "No image."
        using var tmp = Paths.Temp();
        string photo = tmp.File("p.png");
        using (var img = ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 96, 128)) ImageIO.Save(img, photo);
        var registry = new Reverie.Models.Registry.ModelRegistry(tmp.File("cache"), tmp.File("models.json"));
        registry.Add("bvlc", Paths.GoogLeNet, BvlcGoogLeNet.Spec); // with its preprocessing: noise is then not all one class
        var m = Reverie.Adversarial.AttackMethods.Parse(name);
        var options = new Reverie.Adversarial.AttackJobOptions
        {
            Input = photo, Model = "bvlc",
            Attack = new Reverie.Adversarial.AttackOptions { Method = m, Eps = Reverie.Adversarial.AttackMethods.OptionalEps(m) ? 0 : 0.01,
                Steps = Reverie.Adversarial.AttackMethods.BlackBox(m) ? 300 : 2, Searches = 1 }, // HopSkipJump's first queries go to finding a start
        };
        int previews = 0;
        var job = new Reverie.Adversarial.AttackJob();
        var context = new JobContext
        {
            Output = tmp.File("out.png"), Recipe = JobCatalog.RecipeFor(job, options), PreviewEvery = 1, Registry = registry,
            Events = new Sink(e => { if (e.Preview is { } p) { previews++; Assert.Equal(3, p.shape[1]); } }),
        };
        var result = await job.RunAsync(options, context);
        Assert.False(result.Interrupted);
        Assert.True(File.Exists(context.Output));
        Assert.True(previews >= 1, $"{name}: {previews} previews");
    }

    sealed class Sink(Action<JobEvent> a) : IProgress<JobEvent>
    {
        public void Report(JobEvent value) => a(value);
    }
}
