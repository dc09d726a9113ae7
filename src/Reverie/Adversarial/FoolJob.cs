using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Objectives;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>The options of <c>reverie fool</c>: which classes to fool, and how to evolve the images.</summary>
internal sealed record FoolJobOptions : JobOptions
{
    /// <summary>The classes, by name or index; empty with <see cref="AllClasses"/>.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>Every class of the model.</summary>
    public bool AllClasses { get; init; }
    /// <summary><c>cppn</c> (a pattern-producing network) or <c>direct</c> (one gene per pixel).</summary>
    public string Encoding { get; init; } = "cppn";
    /// <summary>Generations.</summary>
    public int Generations { get; init; } = new FoolingOptions().Generations;
    /// <summary>Individuals per generation.</summary>
    public int Population { get; init; } = new FoolingOptions().Population;
    /// <summary>One MAP-Elites run over all the classes instead of one run per class.</summary>
    public bool MapElites { get; init; }

    /// <summary>The evolution's settings.</summary>
    internal FoolingOptions Evolution() => new()
    {
        Encoding = Encoding switch
        {
            "direct" => FoolingEncoding.Direct,
            "cppn" => FoolingEncoding.Cppn,
            _ => throw new BadInputException($"--encoding must be direct or cppn; got '{BadInputException.Shown(Encoding)}'."),
        },
        Generations = Generations, Population = Population, MapElites = MapElites, Seed = Seed,
    };

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is null) throw new BadInputException("fool needs a model (--model).");
        Evolution().Validate();
        if (Classes.Count > 0 == AllClasses) throw new BadInputException("Name classes with --class, or use --all-classes (one of the two).");
    }

    /// <inheritdoc/>
    /// <remarks>A generation is judged in one forward pass without gradients (a quarter of a training pass's activations), at the usual 224x224 input.</remarks>
    internal override MemoryEstimate? EstimateMemory() =>
        new(MemoryEstimate.Sum(MemoryEstimate.Images(Population * 224L * 224, 3), MemoryEstimate.Network(Model, Population, 224L * 224) / 4),
            $"a population of {Population} images of 224x224 through {MemoryEstimate.Shown(Model ?? "the model")}");
}

/// <summary>The best image found for one class.</summary>
/// <param name="Class">The class index.</param>
/// <param name="Label">Its label.</param>
/// <param name="Confidence">The model's probability for the class on the image.</param>
/// <param name="Generation">The generation it was found in.</param>
/// <param name="File">The image's file, beside the sheet.</param>
internal sealed record FooledClass(int Class, string Label, double Confidence, int Generation, string File);

/// <summary>What <c>reverie fool</c> found.</summary>
internal sealed record FoolResults(string Model, string Encoding, int Generations, int Population, bool MapElites, IReadOnlyList<FooledClass> Classes);

/// <summary>
/// <c>reverie fool</c> as a job: evolves, black-box, images the classifier labels with high
/// confidence (<see cref="FoolingEvolution"/>). The output is the labelled sheet (OUT.png, its
/// recipe beside it); the log of every generation (OUT.csv), the results (OUT.json) and each
/// class's image go into the same folder. Interrupted, it saves nothing (the evolution
/// hands over its images at the end).
/// </summary>
internal sealed class FoolJob : Job<FoolJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "fool";

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(FoolJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        var options = o.Evolution();
        using var net = await c.OpenModelAsync(o.Model!);
        if (net.Labels is null) throw new BadInputException($"{net.Name} has no class labels.");
        var parser = new ObjectiveLanguage(net);
        var classes = o.AllClasses ? Enumerable.Range(0, net.Labels.Count).ToList()
            : o.Classes.Select(name => ((ClassObjective)parser.Parse("class:" + name)).Index).Distinct().ToList();
        if (o.AllClasses && net.Labels.Count > 100 && !o.MapElites)
            throw new BadInputException($"{net.Name} has {net.Labels.Count} classes; with --all-classes use --map-elites, or name classes with --class.");
        string dir = Path.GetDirectoryName(Path.GetFullPath(c.Output))!;
        if (File.Exists(dir)) throw new BadInputException($"'{BadInputException.Shown(dir)}' is a file; --output must be a folder.");
        Directory.CreateDirectory(dir);
        // Every file is checked before the evolution, so a refused one cannot leave the folder half replaced.
        // The log and the results share the sheet's stem, so that its recipe marks them as Reverie's on a second run.
        string log = Path.ChangeExtension(c.Output, ".csv"), report = Path.ChangeExtension(c.Output, ".json");
        c.CheckOutput(log, sidecar: false);
        c.CheckOutput(report, sidecar: false);
        foreach (int k in classes) c.CheckOutput(Path.Combine(dir, $"{k:000}-{Safe(net.Labels[k])}.png"), sidecar: false);
        var evo = new FoolingEvolution(net, options);
        List<FoolingResult> results;
        try
        {
            results = await Task.Run(() => evo.Run(classes, new SyncProgress<(int Done, int Total, double Best)>(s =>
                c.Report(new JobEvent { Stage = $"evolving ({(o.MapElites ? "worst class" : "best")} {s.Best:0.0000})", Step = s.Done, Total = s.Total })), c.Cancel));
        }
        catch (OperationCanceledException) when (c.Cancel.IsCancellationRequested)
        {
            // The evolution keeps its best images only at the end of a class's run: there is nothing finished to save.
            return new JobResult([], "interrupted before the evolution ended: nothing saved", true);
        }
        try
        {
            int generations = evo.Log.Count == 0 ? 0 : evo.Log.Max(e => e.Generation);
            var found = results.Select(r => new FooledClass(r.Class, r.Label, r.Confidence, r.Generation, $"{r.Class:000}-{Safe(r.Label)}.png")).ToList();
            var summary = new FoolResults(net.Name, o.Encoding, o.Generations, o.Population, o.MapElites, found);
            var sheet = Grid.Make(results.Select(r => Upscale(r.Image)).ToList(), Math.Min(5, results.Count),
                results.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Class} {r.Confidence * 100:0.00}")).ToList(), scale: 2);
            var csv = new StringBuilder("generation,class,label,best_confidence,evaluations\n");
            foreach (var e in evo.Log)
                csv.Append(string.Create(CultureInfo.InvariantCulture, $"{e.Generation},{e.Class},\"{net.Labels[e.Class].Replace("\"", "'")}\",{e.BestConfidence:0.######},{e.Evaluations}\n"));
            var json = new JsonObject
            {
                ["model"] = net.Name, ["encoding"] = o.Encoding, ["generations"] = o.Generations, ["population"] = o.Population,
                ["mapElites"] = o.MapElites, ["seed"] = o.Seed,
                ["results"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject { ["class"] = r.Class, ["label"] = r.Label, ["confidence"] = r.Confidence, ["generation"] = r.Generation })]),
            };
            c.Save(sheet, c.Output, summary, generations);
            for (int i = 0; i < results.Count; i++) c.SaveExtra(Upscale(results[i].Image), Path.Combine(dir, found[i].File));
            c.SaveExtraFile(Encoding.UTF8.GetBytes(csv.ToString()), log);
            c.SaveExtraFile(Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true })), report);
            int sure = results.Count(r => r.Confidence >= 0.99);
            string text = $"{sure} of {results.Count} classes at >= 99% confidence; {c.Output}, {Path.GetFileName(log)}, {Path.GetFileName(report)} and the images in {dir}";
            return new JobResult([c.Output], text, false, summary);
        }
        finally
        {
            foreach (var r in results) r.Image.Dispose();
        }
    }

    static string Safe(string label) => string.Concat(label.Select(ch => char.IsLetterOrDigit(ch) ? char.ToLowerInvariant(ch) : '-'));

    /// <summary>Small images (e.g. 28×28) are enlarged by whole pixels so that they can be seen.</summary>
    static Tensor Upscale(Tensor img)
    {
        int f = (int)Math.Max(1, 112 / Math.Max(img.shape[2], img.shape[3]));
        return f == 1 ? img : nn.functional.interpolate(img, [img.shape[2] * f, img.shape[3] * f], mode: InterpolationMode.Nearest);
    }
}
