using Reverie.Adversarial;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Objectives;
using static TorchSharp.torch;

namespace Reverie.Explaining;

/// <summary>
/// The options of <c>reverie explain</c>: which class of a photo to explain, by which methods,
/// and their settings. The network sees the photo resized to its input size, as <c>classify</c> does.
/// </summary>
public sealed record ExplainJobOptions : JobOptions
{
    /// <summary>Every method, in the order a contact sheet shows them.</summary>
    public static readonly IReadOnlyList<string> AllMethods = ["saliency", "gradxinput", "smoothgrad", "ig", "gradcam", "gradcam++", "occlusion", "lime"];

    /// <summary>The photo (an absolute path in recipes).</summary>
    public required string Image { get; init; }
    /// <summary>The class to explain: a label, an index, or <c>top</c> (the network's answer).</summary>
    public string Class { get; init; } = "top";
    /// <summary>The methods (see <see cref="AllMethods"/>); several make a contact sheet.</summary>
    public IReadOnlyList<string> Methods { get; init; } = ["gradcam"];
    /// <summary>Grad-CAM's layer; null for the network's last layer with a spatial extent.</summary>
    public string? Layer { get; init; }
    /// <summary>Integrated gradients: intervals of the path (the trapezoidal rule).</summary>
    public int Steps { get; init; } = 64;
    /// <summary>Integrated gradients: <c>black</c>, <c>blur</c> or <c>noise</c>.</summary>
    public string Baseline { get; init; } = "black";
    /// <summary>SmoothGrad: noisy samples.</summary>
    public int Samples { get; init; } = 32;
    /// <summary>SmoothGrad: the noise's σ as a fraction of the image's range.</summary>
    public double Noise { get; init; } = 0.15;
    /// <summary>Occlusion: the gray square's side in pixels of the network's input.</summary>
    public int Window { get; init; } = 32;
    /// <summary>Occlusion: the step between squares.</summary>
    public int Stride { get; init; } = 16;
    /// <summary>LIME: about how many superpixels the photo is cut into (SLIC).</summary>
    public int Superpixels { get; init; } = 50;
    /// <summary>LIME: perturbed samples (each hides a random half of the superpixels).</summary>
    public int Perturbations { get; init; } = 1000;
    /// <summary>LIME: how many superpixels (largest positive weights) the picture shows.</summary>
    public int Features { get; init; } = 5;
    /// <summary>LIME: what a hidden superpixel shows: <c>mean</c> (its own mean colour, LIME's default) or <c>gray</c>.</summary>
    public string LimeFill { get; init; } = "mean";
    /// <summary>
    /// Deletion and insertion curves for every map, and for a random order (Petsiuk et al. 2018):
    /// their areas in the results and a plot beside the picture (OUT-curves.png).
    /// </summary>
    public bool Curves { get; init; }
    /// <summary>How many of the top classes to report.</summary>
    public int Top { get; init; } = 5;

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Image];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Methods.Count == 0) throw new BadInputException("Give at least one --method.");
        foreach (var m in Methods)
            if (!AllMethods.Contains(m)) throw new BadInputException($"Unknown method '{BadInputException.Shown(m)}'; methods: {string.Join(", ", AllMethods)}, or all.");
        if (Steps is < 1 or > 4096) throw new BadInputException($"--steps must be from 1 to 4096; got {Steps}.");
        if (Samples is < 1 or > 4096) throw new BadInputException($"--samples must be from 1 to 4096; got {Samples}.");
        Check.Finite(("--noise", Noise));
        if (Noise is < 0 or > 10) throw new BadInputException($"--noise must be from 0 to 10 (a fraction of the image's range); got {Noise}.");
        if (Window < 1) throw new BadInputException($"--window must be at least 1 pixel; got {Window}.");
        if (Stride < 1) throw new BadInputException($"--stride must be at least 1 pixel; got {Stride}.");
        if (Superpixels is < 2 or > 2000) throw new BadInputException($"--superpixels must be from 2 to 2000; got {Superpixels}.");
        if (Perturbations is < 10 or > 100000) throw new BadInputException($"--perturbations must be from 10 to 100000; got {Perturbations}.");
        if (LimeFill is not ("mean" or "gray")) throw new BadInputException($"--lime-fill must be mean or gray; got '{BadInputException.Shown(LimeFill)}'.");
        if (Features is < 1 or > 2000) throw new BadInputException($"--features must be from 1 to 2000; got {Features}.");
        if (Top is < 1 or > 1000) throw new BadInputException($"--top must be from 1 to 1000; got {Top}.");
        if (Baseline is not ("black" or "blur" or "noise")) throw new BadInputException($"--baseline must be black, blur or noise; got '{BadInputException.Shown(Baseline)}'.");
        if (string.IsNullOrWhiteSpace(Class)) throw new BadInputException("--class must be a class name, an index or top.");
    }

    /// <summary>The method objects, for a network whose Grad-CAM layer is <paramref name="camLayer"/>.</summary>
    internal IAttribution Method(string name, string camLayer, string? camName = null) => name switch
    {
        "saliency" => new Saliency(),
        "gradxinput" => new GradientTimesInput(),
        "smoothgrad" => new SmoothGrad(Samples, Noise, Seed),
        "ig" => new IntegratedGradients(Steps, Enum.Parse<Baseline>(Baseline, ignoreCase: true), Seed),
        "gradcam" => new GradCam(camLayer, layerName: camName),
        "gradcam++" => new GradCam(camLayer, plusPlus: true, layerName: camName),
        "occlusion" => new Occlusion(Window, Stride),
        "lime" => new Lime(Superpixels, Perturbations, Features, Seed, gray: LimeFill == "gray"),
        _ => throw new BadInputException($"Unknown method '{BadInputException.Shown(name)}'."),
    };

    /// <summary>The layer Grad-CAM uses on <paramref name="net"/>: the one asked for, or the last with a spatial extent.</summary>
    internal string CamLayer(INetwork net)
    {
        if (Layer is { } l)
        {
            string resolved = net.ResolveLayer(l);
            var info = net.Layers.FirstOrDefault(x => net.ResolveLayer(x.Name) == resolved);
            if (info is not null && info.Shape.Length != 4)
                throw new BadInputException($"--layer {BadInputException.Shown(l)} has no spatial extent (its output is [{string.Join(", ", info.Shape)}]); Grad-CAM needs a layer with a height and a width, such as {ClassScore.Readable(net, (this with { Layer = null }).CamLayer(net))}.");
            return resolved;
        }
        var (scoreLayer, _) = ClassScore.Source(net);
        var last = net.Layers.LastOrDefault(x => x.Shape.Length == 4 && x.Shape[2] * x.Shape[3] >= 4 && net.ResolveLayer(x.Name) != scoreLayer)
            ?? throw new BadInputException($"Model '{net.Name}' has no layer with a spatial extent for Grad-CAM.");
        return net.ResolveLayer(last.Name);
    }
}

/// <summary>One method's map: the file it was written to (OUT.npy, or OUT.npz under the method's name) and its range.</summary>
internal sealed record ExplainedMap(string Method, string Title, string Map, double Min, double Max, string? Layer, double? AttributionSum, double? ScoreDelta,
    int? Superpixels = null, double? Fit = null, double? DeletionAuc = null, double? InsertionAuc = null);

/// <summary>What an explanation found.</summary>
internal sealed record ExplainResults(string Model, TopClass Explained, string Score, IReadOnlyList<TopClass> Top, IReadOnlyList<ExplainedMap> Maps)
{
    /// <summary>The deletion and insertion areas of a random region order, with <c>--curves</c>.</summary>
    public CurveAreas? Random { get; init; }
}

/// <summary>The areas under a deletion and an insertion curve.</summary>
internal sealed record CurveAreas(double Deletion, double Insertion);

/// <summary>
/// <c>reverie explain</c> as a job: the photo with each method's map over it (one picture, or a
/// contact sheet of several), the raw maps as float32 beside it (OUT.npy, or OUT.npz with one array
/// per method), the top classes.
/// </summary>
internal sealed class ExplainJob : Job<ExplainJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "explain";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <summary>The longer side of the pictures.</summary>
    const int DisplaySide = 512;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(ExplainJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        if (net.Labels is null || net.Labels.Count < 2)
            throw new BadInputException($"Model '{net.Name}' has no classes to explain (it gives features, not a classification).");
        o.Prepare(net);
        using var photo = ImageIO.Load(o.Image, 2 * Math.Max(DisplaySide, Math.Max(net.Input.Width, net.Input.Height)));
        using var scope = NewDisposeScope();
        var x = ImageIO.Resize(photo, net.Input.Height, net.Input.Width).to(net.Device);
        var top = Classifier.Classify(net, x, o.Top);
        int cls = o.Class == "top" ? top[0].Index
            : (ObjectiveLanguage.Parse(net, "class:" + o.Class) as ClassObjective ?? throw new BadInputException($"--class '{BadInputException.Shown(o.Class)}' must be one class.")).Index;
        double p;
        using (no_grad()) p = net.Probabilities(x)[0][cls].item<float>();
        string label = net.Labels[cls];
        string camLayer = o.Methods.Any(m => m.StartsWith("gradcam", StringComparison.Ordinal)) ? o.CamLayer(net) : "";
        string camName = camLayer.Length > 0 ? ClassScore.Readable(net, camLayer) : "";
        c.Resolved(o with { Layer = camLayer.Length > 0 ? camName : o.Layer });
        var methods = o.Methods.Select(m => o.Method(m, camLayer, camName)).ToList();
        long total = methods.Sum(m => (long)m.Passes(x.shape[2], x.shape[3])) + (o.Curves ? (methods.Count + (long)Explaining.Curves.RandomOrders) * Explaining.Curves.Passes : 0);
        // The raw maps: OUT.npy for one method, OUT.npz (an array per method) for several; checked before any work.
        string mapsFile = c.Beside("", methods.Count == 1 ? ".npy" : ".npz");
        c.CheckOutput(mapsFile, sidecar: false);
        string curvesFile = c.Beside("-curves", ".png");
        if (o.Curves) c.CheckOutput(curvesFile, sidecar: false);
        var curves = new List<(string Title, Curves.Pair Pair)>();

        var display = Math.Max(photo.shape[2], photo.shape[3]) > DisplaySide ? Optimization.Capture.Shrink(photo, DisplaySide) : photo;
        var panels = new List<Tensor>();
        var rawMaps = new List<(string Name, byte[] Npy)>();
        var maps = new List<ExplainedMap>();
        long done = 0;
        var (source, probabilities) = ClassScore.Source(net);
        string score = (probabilities ? "log p at " : "logit at ") + ClassScore.Readable(net, source);
        foreach (var method in methods)
        {
            if (c.Cancel.IsCancellationRequested) break;
            string stage = method.Title;
            long offset = done;
            var progress = new SyncProgress<int>(n => c.Report(new JobEvent { Stage = stage, Step = offset + n, Total = total }));
            Tensor map;
            // On this thread: the tensors belong to this job's dispose scope.
            try { map = method.Explain(net, x, cls, progress, c.Cancel); }
            catch (OperationCanceledException) { break; }
            done += method.Passes(x.shape[2], x.shape[3]);
            Curves.Pair? pair = null;
            if (o.Curves)
            {
                long before = done;
                try { pair = Explaining.Curves.ForMap(net, x, cls, map, new SyncProgress<int>(n => c.Report(new JobEvent { Stage = stage + ": deletion and insertion", Step = before + n, Total = total })), c.Cancel); }
                catch (OperationCanceledException) { break; }
                done += Explaining.Curves.Passes;
                curves.Add((method.Name, pair));
            }
            rawMaps.Add((method.Name, Npy.Encode(map)));
            var ig = method as IntegratedGradients;
            if (ig is not null && Math.Abs(ig.Completeness.Sum - ig.Completeness.Delta) > 0.05 * Math.Abs(ig.Completeness.Delta))
                c.Note($"integrated gradients' attributions sum to {ig.Completeness.Sum:G4}, not score(image) - score(baseline) = {ig.Completeness.Delta:G4}: the path is not resolved; raise --steps (512 reach 0.5% on the sample photos).");
            var lime = method as Lime;
            if (lime is not null && lime.Fit < 0.3)
                c.Note($"LIME's linear model explains only R² = {lime.Fit:0.00} of the network's answers near this photo: read its map with care; more --perturbations or fewer --superpixels help.");
            maps.Add(new ExplainedMap(method.Name, method.Title, Path.GetFileName(mapsFile), map.min().item<float>(), map.max().item<float>(), (method as GradCam)?.Layer,
                ig?.Completeness.Sum, ig?.Completeness.Delta, lime?.Segments, lime?.Fit, pair?.DeletionAuc, pair?.InsertionAuc));
            var panel = Overlay.Draw(display, method.ForDisplay(map), method.Signed, method.Title, $"{label} (class {cls}, p = {p:0.000}), {net.Name}");
            panels.Add(panel);
            c.Report(new JobEvent { Stage = stage, Step = done, Total = total, Preview = c.PreviewEvery > 0 ? panel : null });
        }
        Curves.Pair? random = null;
        if (o.Curves && panels.Count == methods.Count)
        {
            long before = done;
            try { random = Explaining.Curves.Random(net, x, cls, o.Seed, new SyncProgress<int>(n => c.Report(new JobEvent { Stage = "random order: deletion and insertion", Step = before + n, Total = total })), c.Cancel); }
            catch (OperationCanceledException) { }
        }
        bool interrupted = panels.Count < methods.Count || (o.Curves && random is null);
        var results = new ExplainResults(net.Name, new TopClass(label, cls, p), score, top.Select(t => new TopClass(t.Label, t.Index, t.Probability)).ToList(), maps)
            { Random = random is null ? null : new CurveAreas(random.DeletionAuc, random.InsertionAuc) };
        if (panels.Count == 0)
        {
            c.Save(display, c.Output, results, 0, interrupted: true); // nothing done: nothing saved
            return new JobResult([], "interrupted before the first method: nothing saved", true, results);
        }
        var picture = panels.Count == 1 ? panels[0] : Grid.Make(panels, Math.Min(4, panels.Count), gap: 6);
        c.Save(picture, c.Output, results, panels.Count, interrupted);
        c.SaveExtraFile(methods.Count == 1 ? rawMaps[0].Npy : Npy.EncodeArchive(rawMaps), mapsFile); // after the picture, whose recipe names it
        if (random is not null)
            c.SaveExtraPng(CurvesPlot(curves, random, $"{label} (class {cls}), {net.Name}"), curvesFile);
        string summary = $"{c.Output} ({string.Join(", ", maps.Select(m => m.Method))} for '{label}', p = {p:0.000}; raw {(methods.Count == 1 ? "map" : "maps")}: {mapsFile})";
        return new JobResult(random is null ? [c.Output, mapsFile] : [c.Output, mapsFile, curvesFile], interrupted ? "interrupted: " + summary : summary, interrupted, results);
    }

    /// <summary>The deletion and insertion curves of every method and of a random order, as a PNG.</summary>
    static byte[] CurvesPlot(IReadOnlyList<(string Title, Curves.Pair Pair)> curves, Curves.Pair random, string subtitle)
    {
        var xs = Enumerable.Range(0, Explaining.Curves.Portions + 1).Select(i => (double)i / Explaining.Curves.Portions).ToArray();
        LineChart Chart(string name, Func<Curves.Pair, double[]> pick, Func<Curves.Pair, double> auc) => new(
            $"{name} ({subtitle})", name == "Deletion" ? "fraction of the photo deleted (highest-ranked regions first)" : "fraction of the photo inserted into its blurred copy",
            "probability of the class",
            [.. curves.Select((m, i) => new Series($"{m.Title}: {auc(m.Pair):0.000}", xs, pick(m.Pair), Plot.Palette[i % Plot.Palette.Length])),
             new Series($"random orders (mean of {Explaining.Curves.RandomOrders}): {auc(random):0.000}", xs, pick(random), SkiaSharp.SKColors.Gray)]) { YRange = (0, 1) };
        return Plot.Render([Chart("Deletion", q => q.Deletion, q => q.DeletionAuc), Chart("Insertion", q => q.Insertion, q => q.InsertionAuc)], 2, 640, 480,
            "Deletion and insertion curves (area in the legend; deletion lower and insertion higher is more faithful)");
    }
}
