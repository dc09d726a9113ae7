using Reverie.Explaining;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Training;
using SkiaSharp;
using static TorchSharp.torch;

namespace Reverie.Science;

/// <summary>
/// The options of <c>reverie science shortcut</c>: how much data, how long to train, and which
/// explanation methods to measure. The job trains its own networks; it takes no model.
/// </summary>
internal sealed record ShortcutJobOptions : JobOptions
{
    /// <summary>The methods measured by default: all of <c>explain</c>'s but Grad-CAM++ (Grad-CAM stands for both).</summary>
    public static readonly IReadOnlyList<string> DefaultMethods = ["saliency", "gradxinput", "smoothgrad", "ig", "gradcam", "occlusion", "lime"];

    /// <summary>Training images of each network.</summary>
    public int Train { get; init; } = 4000;
    /// <summary>Test images (each shown with its stamp matched, random and swapped).</summary>
    public int Test { get; init; } = 800;
    /// <summary>Test images whose maps are measured.</summary>
    public int Explained { get; init; } = 48;
    /// <summary>Side of the images in pixels.</summary>
    public int Size { get; init; } = 64;
    /// <summary>Passes over the training images.</summary>
    public int Epochs { get; init; } = 6;
    /// <summary>The explanation methods (names as <c>explain --method</c> takes them).</summary>
    public IReadOnlyList<string> Methods { get; init; } = DefaultMethods;
    /// <summary>Also train on permuted labels: the label-randomization sanity check of Adebayo et al. 2018.</summary>
    public bool RandomLabels { get; init; } = true;
    /// <summary>Images of the permuted-label network (at most <see cref="Train"/>): few, so that it can memorize them, as the check requires.</summary>
    public int RandomLabelImages { get; init; } = 500;
    /// <summary>Passes of the permuted-label network over its images.</summary>
    public int RandomLabelEpochs { get; init; } = 40;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is not null) throw new BadInputException("science shortcut trains its own networks; it takes no --model.");
        if (Train is < 40 or > 200_000) throw new BadInputException($"--train must be from 40 to 200000 images; got {Train}.");
        if (Test is < 8 or > 100_000) throw new BadInputException($"--test must be from 8 to 100000 images; got {Test}.");
        if (Explained < 1 || Explained > Test) throw new BadInputException($"--explained must be from 1 to --test ({Test}); got {Explained}.");
        if (Size is < 32 or > 256) throw new BadInputException($"--size must be from 32 to 256 pixels; got {Size}.");
        if (Epochs is < 1 or > 200) throw new BadInputException($"--epochs must be from 1 to 200; got {Epochs}.");
        if (RandomLabels && RandomLabelImages < 8) throw new BadInputException($"The permuted-label network needs at least 8 images; got {RandomLabelImages}.");
        if (RandomLabels && RandomLabelEpochs is < 1 or > 1000) throw new BadInputException($"The permuted-label network's epochs must be from 1 to 1000; got {RandomLabelEpochs}.");
        if (Methods.Count == 0) throw new BadInputException("Give at least one --method.");
        foreach (var m in Methods)
            if (!ExplainJobOptions.AllMethods.Contains(m)) throw new BadInputException($"Unknown method '{BadInputException.Shown(m)}'; methods: {string.Join(", ", ExplainJobOptions.AllMethods)}.");
    }
}

/// <summary>How one trained network did on the three test sets.</summary>
internal sealed record ShortcutNetwork(string Name, string Trained, double TrainAccuracy, double Matched, double Random, double Swapped);

/// <summary>
/// What one method's maps showed: the mean share of |map| on the stamp and on the shape, for the
/// network trained with the cue and the one trained without; and the mean Spearman correlation of
/// its maps on the network trained with true labels and the one trained on permuted labels.
/// </summary>
internal sealed record ShortcutMethod(string Method, string Title, double StampWithCue, double ShapeWithCue, double StampWithoutCue, double ShapeWithoutCue, double? LabelRandomization);

/// <summary>What the shortcut experiment measured.</summary>
/// <param name="Networks">The networks and their accuracies.</param>
/// <param name="Methods">The methods and their shares.</param>
/// <param name="StampArea">The stamp's share of the image's area.</param>
/// <param name="ShapeArea">The shape region's mean share of the image's area.</param>
/// <param name="CamLayer">Grad-CAM's layer.</param>
internal sealed record ShortcutResults(IReadOnlyList<ShortcutNetwork> Networks, IReadOnlyList<ShortcutMethod> Methods, double StampArea, double ShapeArea, string CamLayer)
{
    /// <summary>How many points accuracy lost from matched to swapped stamps, for the network trained with the cue.</summary>
    public double Drop => Networks[0].Matched - Networks[0].Swapped;
}

/// <summary>
/// <c>reverie science shortcut</c>: a network trained where a coloured stamp predicts the label
/// perfectly learns the stamp, not the shapes; accuracy collapses when the stamp is swapped, and the
/// explanation maps show it. The same network trained with random stamps looks at the shapes. A
/// third network trained on permuted labels is the label-randomization sanity check: a faithful
/// method's maps must differ between the network that learned the task and the one that could not.
/// Output: a sheet of explained examples (OUT.png), the plots (OUT-plots.png), the numbers in the recipe.
/// </summary>
internal sealed class ShortcutJob : Job<ShortcutJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "science-shortcut";

    /// <summary>The test images' seed (disjoint from training's).</summary>
    const int TestSeed = 1_000_003, TrainSeed = 1;
    /// <summary>Examples in the sheet (one per class), and their side there.</summary>
    const int SheetSide = 160;

    /// <inheritdoc/>
    protected override Task<JobResult> RunAsync(ShortcutJobOptions o, JobContext c) => Task.FromResult(Run(o, c));

    static JobResult Run(ShortcutJobOptions o, JobContext c)
    {
        TorchRuntime.Initialize();
        c.CheckImageOutput();
        string plots = c.Beside("-plots", ".png");
        c.CheckOutput(plots, sidecar: false);
        var cued = new CuedShapes(o.Train, TrainSeed, Cue.Matched, o.Size);
        var uncued = new CuedShapes(o.Train, TrainSeed, Cue.Random, o.Size);
        int few = Math.Min(o.RandomLabelImages, o.Train);
        var permuted = Datasets.Shuffled(few, new Random(Datasets.Seed(o.Seed, 0x1abe1))).Select(uncued.Label).ToArray();
        var train = new TrainOptions { Epochs = o.Epochs, BatchSize = 64, LearningRate = 2e-3, WeightDecay = 1e-4, Seed = o.Seed };
        var runs = new List<(string Name, string Trained, IImageDataset Data, TrainOptions Options)>
        {
            ("with the cue", $"{o.Train} shapes, stamp colour = class", cued, train),
            ("without the cue", $"{o.Train} shapes, stamp colour random", uncued, train),
        };
        // Adebayo et al.'s check compares with a network that memorized permuted labels: a few images, many passes.
        if (o.RandomLabels)
            runs.Add(("random labels", $"{few} shapes, labels permuted, {o.RandomLabelEpochs} epochs", new CuedShapes(few, TrainSeed, Cue.Random, o.Size, permuted),
                train with { Epochs = o.RandomLabelEpochs, WeightDecay = 0 }));
        static long Steps(IImageDataset d, TrainOptions t) => (long)t.Epochs * ((d.Count + t.BatchSize - 1) / t.BatchSize);
        long trainSteps = runs.Sum(r => Steps(r.Data, r.Options));
        long explainUnits = (long)(o.RandomLabels ? 3 : 2) * o.Explained * o.Methods.Count;
        long total = trainSteps + explainUnits;

        var test = new CuedShapes(o.Test, TestSeed, Cue.Matched, o.Size);
        var nets = new List<ConvNet>();
        try
        {
            var networks = new List<ShortcutNetwork>();
            long offset = 0;
            foreach (var (name, trained, data, options) in runs)
            {
                var spec = Architectures.Get("small", CuedShapes.ClassNames.Length, o.Size);
                var net = new ConvNet("shapes-" + name.Replace(' ', '-'), spec, Architectures.InputFor(spec, "small"), CuedShapes.ClassNames, o.Seed);
                nets.Add(net);
                long at = offset;
                var progress = new SyncProgress<TrainProgress>(p => c.Report(new JobEvent
                {
                    Stage = $"training {name}: epoch {p.Epoch}/{p.Epochs}", Step = at + (p.Epoch - 1L) * p.Steps + p.Step, Total = total,
                    Terms = new Dictionary<string, double> { ["loss"] = p.Loss, ["accuracy"] = p.Accuracy },
                }));
                TrainState state;
                try { state = new Trainer(net, options).Run(data, null, progress: progress, cancel: c.Cancel); }
                catch (OperationCanceledException) { return Interrupted(c); }
                offset += Steps(data, options);
                double trainAccuracy = state.History[^1].TrainAccuracy;
                state.Dispose();
                double Accuracy(Cue cue) => Trainer.Evaluate(net, test.With(cue)).Accuracy;
                var n = new ShortcutNetwork(name, trained, trainAccuracy, Accuracy(Cue.Matched), Accuracy(Cue.Random), Accuracy(Cue.Swapped));
                networks.Add(n);
                c.Report(new JobEvent { Kind = JobEventKind.Log, Message = $"{name}: training accuracy {100 * n.TrainAccuracy:0.0}%; test accuracy {100 * n.Matched:0.0}% with the stamp matched, {100 * n.Random:0.0}% random, {100 * n.Swapped:0.0}% swapped" });
            }

            // The maps: the same test images (stamp matched) explained on every network, for the true class.
            // Occlusion's square is the stamp's size. LIME hides a superpixel with gray, the ground's level:
            // filled with its own mean colour (LIME's default) the flat stamp is never hidden at all, and
            // LIME cannot see it (8% of its mass on the stamp, measured with the defaults below).
            string cam = "conv4";
            var explain = new ExplainJobOptions
            {
                Image = "", Steps = 64, Samples = 32, Window = test.Stamp, Stride = Math.Max(1, test.Stamp / 3),
                Superpixels = 40, Perturbations = 500, Features = 3, LimeFill = "gray", Seed = o.Seed,
            };
            var methods = o.Methods.Select(m => explain.Method(m, nets[0].ResolveLayer(cam), cam)).ToList();
            var images = Enumerable.Range(0, o.Explained).ToArray();
            var stamp = new double[2, methods.Count];
            var shape = new double[2, methods.Count];
            var spearman = new double[methods.Count];
            var sheetMaps = new Tensor?[nets.Count, CuedShapes.ClassNames.Length, methods.Count];
            double shapeArea = 0;
            long done = trainSteps;
            foreach (int i in images)
            {
                using var scope = NewDisposeScope();
                var x = test.Images([i]);
                var regions = test.Regions(i);
                shapeArea += regions[1].mean().item<float>() / images.Length;
                int cls = test.Label(i);
                for (int m = 0; m < methods.Count; m++)
                {
                    var maps = new Tensor[nets.Count];
                    for (int k = 0; k < nets.Count; k++)
                    {
                        if (c.Cancel.IsCancellationRequested) return Interrupted(c);
                        maps[k] = methods[m].Explain(nets[k], x, cls, cancel: c.Cancel).abs();
                        c.Report(new JobEvent { Stage = $"explaining: {methods[m].Title}, image {i + 1}/{images.Length}", Step = ++done, Total = total });
                        if (i < CuedShapes.ClassNames.Length) sheetMaps[k, i, m] = maps[k].clone().MoveToOuterDisposeScope();
                    }
                    for (int k = 0; k < 2; k++)
                    {
                        double sum = maps[k].sum().item<float>();
                        if (!(sum > 0)) continue; // an all-zero map (Grad-CAM's ReLU can give one) puts mass nowhere
                        stamp[k, m] += (maps[k] * regions[0]).sum().item<float>() / sum / images.Length;
                        shape[k, m] += (maps[k] * regions[1]).sum().item<float>() / sum / images.Length;
                    }
                    if (nets.Count > 2) spearman[m] += SanityChecks.Spearman(maps[1], maps[2]) / images.Length;
                }
            }
            var results = new ShortcutResults(networks,
                methods.Select((m, k) => new ShortcutMethod(m.Name, m.Title, stamp[0, k], shape[0, k], stamp[1, k], shape[1, k], nets.Count > 2 ? spearman[k] : null)).ToList(),
                (double)test.Stamp * test.Stamp / (o.Size * o.Size), shapeArea, cam);
            c.Save(Sheet(test, nets, methods, sheetMaps), c.Output, results, o.Epochs);
            c.SaveExtraPng(Plots(results), plots);
            foreach (var t in sheetMaps) t?.Dispose();
            string summary = $"{c.Output}: trained with the cue, accuracy falls from {100 * networks[0].Matched:0.0}% to {100 * networks[0].Swapped:0.0}% when the stamp is swapped; plots: {plots}";
            return new JobResult([c.Output, plots], summary, false, results);
        }
        finally
        {
            foreach (var n in nets) n.Dispose();
        }
    }

    static JobResult Interrupted(JobContext c)
    {
        c.Save(zeros(1, 3, 1, 1), c.Output, null, 0, interrupted: true); // nothing to keep: marks the run as saving nothing
        return new JobResult([], "interrupted: nothing saved", true);
    }

    /// <summary>
    /// The sheet: for each class an example, in two rows (the network trained with the cue, then the
    /// one without): the image with its stamp matched and swapped, with what the network answered, then
    /// each method's map of the matched image.
    /// </summary>
    static Tensor Sheet(CuedShapes test, IReadOnlyList<ConvNet> nets, IReadOnlyList<IAttribution> methods, Tensor?[,,] maps)
    {
        using var scope = NewDisposeScope();
        var swapped = test.With(Cue.Swapped);
        var panels = new List<Tensor>();
        Tensor Big(Tensor x) => nn.functional.interpolate(x, [SheetSide, SheetSide], mode: InterpolationMode.Nearest);
        string Answer(ConvNet net, Tensor x)
        {
            using var noGrad = no_grad();
            var p = net.Probabilities(x)[0];
            int k = (int)p.argmax().item<long>();
            return $"says {CuedShapes.ClassNames[k]} ({p[k].item<float>():0.00})";
        }
        for (int i = 0; i < CuedShapes.ClassNames.Length; i++)
            for (int k = 0; k < 2; k++)
            {
                string who = k == 0 ? "trained with cue" : "trained without";
                var x = test.Images([i]);
                var xs = swapped.Images([i]);
                panels.Add(Overlay.Draw(Big(x), null, false, $"{CuedShapes.ClassNames[i]}, stamp matches", $"{who}: {Answer(nets[k], x)}"));
                panels.Add(Overlay.Draw(Big(xs), null, false, $"stamp of {CuedShapes.ClassNames[swapped.StampClass(i)]}", $"{who}: {Answer(nets[k], xs)}"));
                for (int m = 0; m < methods.Count; m++)
                    panels.Add(Overlay.Draw(Big(x), maps[k, i, m], false, methods[m].Title, who));
            }
        return Grid.Make(panels, 2 + methods.Count, gap: 6).MoveToOuterDisposeScope();
    }

    /// <summary>The plots: accuracies, the maps' shares on the stamp and on the shape, and the label-randomization correlations.</summary>
    static byte[] Plots(ShortcutResults r)
    {
        var colours = new[] { Plot.Palette[1], Plot.Palette[0], Plot.Palette[7] };
        var names = r.Methods.Select(m => m.Method).ToList();
        var panels = new List<IPanel>
        {
            new BarChart("Test accuracy by the stamp's colour", "accuracy", ["stamp matches class", "stamp random", "stamp swapped"],
                r.Networks.Select((n, k) => new BarSeries(n.Name, [n.Matched, n.Random, n.Swapped], colours[k])).ToList())
                { YRange = (0, 1), Lines = [(0.25, "chance")] },
            new BarChart($"Share of |map| on the stamp ({100 * r.StampArea:0.#}% of the area)", "share of the map's mass", names,
                [new BarSeries("trained with the cue", r.Methods.Select(m => m.StampWithCue).ToList(), colours[0]),
                 new BarSeries("trained without", r.Methods.Select(m => m.StampWithoutCue).ToList(), colours[1])])
                { YRange = (0, 1), Lines = [(0.6, "0.6"), (0.3, "0.3")] },
            new BarChart($"Share of |map| on the shape ({100 * r.ShapeArea:0.#}% of the area)", "share of the map's mass", names,
                [new BarSeries("trained with the cue", r.Methods.Select(m => m.ShapeWithCue).ToList(), colours[0]),
                 new BarSeries("trained without", r.Methods.Select(m => m.ShapeWithoutCue).ToList(), colours[1])])
                { YRange = (0, 1) },
        };
        if (r.Methods.All(m => m.LabelRandomization is not null))
            panels.Add(new BarChart("Label randomization: true vs permuted labels", "Spearman correlation of |map|", names,
                [new BarSeries("same maps after training on permuted labels (lower: the method passes)", r.Methods.Select(m => m.LabelRandomization!.Value).ToList(), colours[2])])
                { YRange = (-0.2, 1), Lines = [(0.5, "0.5")] });
        return Plot.Render(panels, 2, 640, 440, "The shortcut experiment: shapes with a coloured stamp");
    }
}
