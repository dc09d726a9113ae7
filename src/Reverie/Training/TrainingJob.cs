using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models.Torch;
using Reverie.Recipes;
using SkiaSharp;
using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>
/// Everything <c>reverie train</c> is asked to do; serialized, the run's recipe. The output is the checkpoint
/// (<c>STEM.json</c>, or <c>STEM</c>), given to the job, not held here. <see cref="JobOptions.Seed"/> seeds the initial
/// weights, the shuffles, the augmentation and the dropout; the network is built here (or adapted from <see cref="Base"/>),
/// so <see cref="JobOptions.Model"/> stays empty.
/// </summary>
internal sealed record TrainingJobOptions : JobOptions
{
    /// <summary><c>fashion-mnist</c>, <c>textures</c> or an ImageFolder path.</summary>
    public required string Data { get; init; }
    /// <summary>Architecture preset or JSON file (ignored with <see cref="Base"/>).</summary>
    public string Arch { get; init; } = "small";
    /// <summary>A checkpoint or embedded model to start from (transfer learning): its top (the dense layers after the last convolution or pooling) is replaced by one new dense softmax layer.</summary>
    public string? Base { get; init; }
    /// <summary>With <see cref="Base"/>: train only the new last layer.</summary>
    public bool Freeze { get; init; }
    /// <summary>With <see cref="Base"/>: train this layer and those after it.</summary>
    public string? UnfreezeFrom { get; init; }
    /// <summary>Only these classes (relabelled in this order).</summary>
    public IReadOnlyList<string>? Classes { get; init; }
    /// <summary>At most this many training images per class (0: all).</summary>
    public int PerClass { get; init; }
    /// <summary>Fraction of the training images held out for validation (0: none; the last epoch is kept).</summary>
    public double ValidationSplit { get; init; } = 0.1;
    /// <summary>Images of the generated texture training set.</summary>
    public int TextureCount { get; init; } = 17 * 1000;
    /// <summary>Image size for ImageFolder data and the <c>small</c> architecture.</summary>
    public int Size { get; init; }
    /// <summary>Augmentation (flips and shifts) on.</summary>
    public bool Augment { get; init; } = true;
    /// <summary>The layer dreams use by default (recorded in the checkpoint).</summary>
    public string? DreamLayer { get; init; }
    /// <summary>Passes over the training images.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>AdamW's peak learning rate (cosine decay).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Decoupled weight decay of conv and dense weights.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Largest σ of the Gaussian pixel noise added to training images (0: none).</summary>
    public double Noise { get; init; }
    /// <summary>Adversarial training (none: clean images).</summary>
    public AdversarialTraining Adversarial { get; init; }
    /// <summary>The L∞ budget of adversarial training, in 0..1 pixel units.</summary>
    public double AdversarialEps { get; init; } = 0.1;
    /// <summary>PGD's steps in adversarial training.</summary>
    public int AdversarialSteps { get; init; } = 7;
    /// <summary>Continue an interrupted run of the same output (how to run, not what: the recipe does not hold it).</summary>
    [JsonIgnore]
    public bool Resume { get; init; }

    /// <summary>The trainer's settings (augmentation and frozen layers are the job's to add).</summary>
    internal TrainOptions Trainer() => new()
    {
        Epochs = Epochs, BatchSize = BatchSize, LearningRate = LearningRate, WeightDecay = WeightDecay, Seed = Seed, Noise = Noise,
        Adversarial = Adversarial, AdversarialEps = AdversarialEps, AdversarialSteps = AdversarialSteps,
    };

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() =>
        Base is { } b && Checkpoint.IsCheckpoint(b) ? [Checkpoint.Stem(b) + ".json", Checkpoint.Stem(b) + ".safetensors"]
        : Arch.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(Arch) ? [Arch] : [];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is not null) throw new BadInputException("train builds its own network; start from a trained one with --base, not --model.");
        Trainer().Validate();
        if (Freeze && UnfreezeFrom is not null) throw new BadInputException("Use either --freeze (train only the new top) or --unfreeze-from LAYER, not both.");
        if ((Freeze || UnfreezeFrom is not null) && Base is null) throw new BadInputException("--freeze and --unfreeze-from need --base MODEL.");
        if (ValidationSplit is < 0 or >= 1 || double.IsNaN(ValidationSplit)) throw new BadInputException($"--val-split must be from 0 to below 1; got {ValidationSplit}.");
        if (PerClass < 0) throw new BadInputException($"--per-class must not be negative; got {PerClass}.");
        if (Classes is { Count: 0 }) throw new BadInputException("--classes names no class; name at least one, or leave it out for every class.");
        if (TextureCount < 1) throw new BadInputException($"--textures must be at least 1 image; got {TextureCount}.");
    }
}

/// <summary>What a training achieved, as the checkpoint's metrics and the recipe's results hold it.</summary>
/// <param name="BestEpoch">The epoch whose weights were kept (best validation accuracy; the last without validation).</param>
/// <param name="TrainAccuracy">Training accuracy in that epoch.</param>
/// <param name="ValidationAccuracy">Validation accuracy in that epoch, when there was validation.</param>
/// <param name="TestAccuracy">Accuracy of the kept weights on the data's test split, when it has one.</param>
/// <param name="TestImages">Images in the test split.</param>
/// <param name="TestPerClass">Test accuracy of each class, in label order.</param>
/// <param name="FrozenChecksumBefore">SHA-256 of the frozen layers before training (transfer learning).</param>
/// <param name="FrozenChecksumAfter">The same after training: equal when they stayed frozen.</param>
/// <param name="History">Every epoch's losses and accuracies.</param>
/// <param name="Threads">The threads libtorch trained with: the weights are the same bit for bit only with the same number.</param>
internal sealed record TrainingResults(int BestEpoch, double TrainAccuracy, double? ValidationAccuracy, double? TestAccuracy, long? TestImages,
    IReadOnlyDictionary<string, double>? TestPerClass, string? FrozenChecksumBefore, string? FrozenChecksumAfter, IReadOnlyList<EpochMetrics> History, int Threads);

/// <summary>
/// <c>reverie train</c> as a job: opens the data, builds (or adapts) the network, trains with validation, evaluates the best
/// weights on the test split when there is one, and writes the checkpoint (<c>STEM.json</c> with architecture, input spec,
/// labels, recipe and metrics; <c>STEM.safetensors</c>), its recipe beside it (<c>STEM.recipe.json</c>) and its figures
/// (<c>STEM-training.png</c>, <c>STEM-confusion.png</c>, each with the recipe in its chunk). Saves a resumable state after
/// every epoch (<c>STEM.last.json</c> and <c>.safetensors</c>), removed when the run ends; cancelled, it keeps that state
/// and writes nothing else.
/// </summary>
internal sealed class TrainingJob : Job<TrainingJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "train";

    /// <summary>Options that may change between an interrupted run and its resumption (how long and how fast, not what on).</summary>
    static readonly HashSet<string> ResumableChanges = ["epochs", "learningRate", "weightDecay", "dreamLayer", "augment", "precision", "device"];

    /// <inheritdoc/>
    protected override Task<JobResult> RunAsync(TrainingJobOptions o, JobContext c) => Task.FromResult(Run(o, c));

    static JobResult Run(TrainingJobOptions o, JobContext c)
    {
        TorchRuntime.Initialize();
        string stem = Checkpoint.Stem(c.Output);
        if (Path.GetDirectoryName(Path.GetFullPath(stem)) is { } outDir && !Directory.Exists(outDir))
            throw new BadInputException($"The folder of --output, '{outDir}', does not exist.");
        string jsonPath = stem + ".json", weightsPath = stem + ".safetensors", trainingPng = stem + "-training.png", confusionPng = stem + "-confusion.png";
        c.CheckOutput(jsonPath);
        foreach (var f in new[] { weightsPath, trainingPng, confusionPng }) c.CheckOutput(f, sidecar: false);
        void Log(string line) => c.Report(new JobEvent { Kind = JobEventKind.Log, Message = line });

        ConvNet? baseNet = o.Base is null ? null : OpenBase(o.Base);
        try
        {
            int size = baseNet?.Spec.InputHeight ?? (o.Arch is "fashion" or "mlp" ? 28 : o.Size > 0 ? o.Size : 128);
            var all = Datasets.Open(o.Data, test: false, o.TextureCount, size);
            IImageDataset? test = o.Data.ToLowerInvariant() is "fashion-mnist" or "fashion" or "textures"
                ? Datasets.Open(o.Data, test: true, o.Data == "textures" ? 100 * TextureDataset.ClassNames.Length : 0, size) : null;
            if (o.Classes is { Count: > 0 } cls)
            {
                if (cls.Count < 2) throw new BadInputException("--classes must name at least two classes.");
                all = Datasets.SelectClasses(all, cls);
                if (test is not null) test = Datasets.SelectClasses(test, cls);
            }
            if (o.PerClass > 0) all = Datasets.PerClass(all, o.PerClass, o.Seed);
            var (train, val) = o.ValidationSplit > 0 ? Datasets.Split(all, o.ValidationSplit, o.Seed) : (all, (IImageDataset?)null);
            Log($"data: {train.Count} training, {val?.Count ?? 0} validation{(test is null ? "" : $", {test.Count} test")} images of {all.Classes.Count} classes");

            ConvNetSpec spec;
            Models.InputSpec input;
            if (baseNet is not null)
            {
                spec = baseNet.Spec.WithNewTop(all.Classes.Count);
                input = baseNet.Input;
                if (spec.InputChannels == 1 && !all.Gray)
                    c.Note("the base takes gray images; colour images are converted");
            }
            else
            {
                spec = Architectures.Get(o.Arch, all.Classes.Count, o.Size);
                if (all.Height != spec.InputHeight || all.Width != spec.InputWidth)
                    c.Note($"{all.Width}x{all.Height} images are resized to the network's {spec.InputWidth}x{spec.InputHeight}");
                input = Architectures.InputFor(spec, o.Arch);
            }
            string name = Path.GetFileName(stem);
            using var net = new ConvNet(name, spec, input, all.Classes, o.Seed) { DreamLayer = o.DreamLayer ?? baseNet?.DreamLayer };
            string? trainableFrom = null;
            if (baseNet is not null)
            {
                CopyBase(baseNet, net);
                trainableFrom = o.Freeze ? spec.LogitsLayer : o.UnfreezeFrom is { } u ? baseNet.ResolveLayer(u) : null;
            }
            var options = o.Trainer() with
            {
                TrainableFrom = trainableFrom,
                Flip = o.Augment && o.Data != "textures",
                Shift = o.Augment && o.Data != "textures" ? Math.Max(1, spec.InputHeight / 14) : 0,
            };
            string? before = trainableFrom is null ? null : FrozenChecksum(net, trainableFrom);

            var optionsJson = (JsonObject)JsonSerializer.SerializeToNode(o, Recipe.JsonOptions)!;
            TrainState? resume = o.Resume ? LoadLast(stem, net, optionsJson) : null;
            if (resume is not null) Log($"resuming after epoch {resume.EpochsDone} of {options.Epochs}");
            var trainer = new Trainer(net, options)
            {
                EpochDone = s =>
                {
                    var m = s.History[^1];
                    Log($"epoch {m.Epoch}/{options.Epochs}: loss {m.TrainLoss:0.0000}, train accuracy {m.TrainAccuracy:P2}" +
                        (double.IsNaN(m.ValidationAccuracy) ? "" : $", validation {m.ValidationAccuracy:P2}") + $" ({m.Seconds:0} s)");
                    SaveLast(stem, net, s, optionsJson);
                },
            };
            var progress = new SyncProgress<TrainProgress>(p => c.Report(new JobEvent
            {
                Stage = $"epoch {p.Epoch}/{p.Epochs}", Step = (p.Epoch - 1L) * p.Steps + p.Step, Total = (long)p.Epochs * p.Steps,
                Terms = new Dictionary<string, double> { ["loss"] = p.Loss, ["accuracy"] = p.Accuracy },
            }));
            TrainState state;
            Evaluation? testEval;
            try
            {
                state = trainer.Run(train, val, resume, progress, c.Cancel);
                net.LoadWeights(state.Best!);
                testEval = test is null ? null : Trainer.Evaluate(net, test, cancel: c.Cancel);
            }
            catch (OperationCanceledException) when (c.Cancel.IsCancellationRequested)
            {
                string kept = File.Exists(stem + ".last.json") ? $"{stem}.last.json keeps the finished epochs; run the same command with --resume to go on" : "no epoch finished";
                return new JobResult([], $"interrupted: {kept}", true);
            }
            string? after = trainableFrom is null ? null : FrozenChecksum(net, trainableFrom);
            if (testEval is not null) Log($"test accuracy {testEval.Accuracy:P2} on {testEval.Total} images");

            var best = state.History[state.BestEpoch - 1];
            var results = new TrainingResults(state.BestEpoch, best.TrainAccuracy, val is null ? null : best.ValidationAccuracy, testEval?.Accuracy, testEval?.Total,
                testEval is null ? null : all.Classes.Select((k, i) => KeyValuePair.Create(k, Math.Round(testEval.PerClass[i], 5))).ToDictionary(),
                before, after, state.History, get_num_threads());
            var recipe = c.Finished(results, state.EpochsDone);
            Checkpoint.Save(stem, state.Best!, new CheckpointInfo
            {
                Name = name,
                Description = o.Base is null ? $"{spec.Layers.Count(l => l.Type == "conv")}-conv network trained on {o.Data}" : $"{Path.GetFileName(Checkpoint.Stem(o.Base))} with a new top for {all.Classes.Count} classes",
                Architecture = spec, Input = net.Input, Labels = all.Classes, DreamLayer = net.DreamLayer,
                Recipe = (JsonObject)JsonSerializer.SerializeToNode((recipe with { Results = null }), Recipe.JsonOptions)!,
                Metrics = (JsonObject)JsonSerializer.SerializeToNode(results, Checkpoint.Json)!,
            });
            recipe.SaveBeside(jsonPath);
            Imaging.OutputFiles.Record(Imaging.OutputFiles.SidecarOf(jsonPath), weightsPath); // the weights are the run's too: replaced without --force next time
            var files = new List<string> { jsonPath, weightsPath, trainingPng };
            c.SaveExtraPng(TrainingPng(name, state.History), trainingPng);
            if (testEval is not null) { c.SaveExtraPng(ConfusionPng($"{name} on {test!.Name}", testEval), confusionPng); files.Add(confusionPng); }
            DeleteLast(stem);
            string summary = $"best epoch {state.BestEpoch}{(testEval is null ? "" : $", test accuracy {testEval.Accuracy:P2}")}; wrote {string.Join(", ", files.Select(Path.GetFileName))}";
            return new JobResult(files, summary, false, results);
        }
        finally { baseNet?.Dispose(); }
    }

    /// <summary>A checkpoint path or an embedded model's name.</summary>
    public static ConvNet OpenBase(string nameOrPath) =>
        Checkpoint.IsCheckpoint(nameOrPath) ? Checkpoint.Load(nameOrPath)
        : Checkpoint.Embedded.Contains(nameOrPath) ? Checkpoint.LoadEmbedded(nameOrPath)
        : throw new BadInputException($"--base must be a Reverie checkpoint (NAME.json with NAME.safetensors) or an embedded model ({string.Join(", ", Checkpoint.Embedded)}); got '{nameOrPath}'.");

    /// <summary>Copies every tensor of <paramref name="to"/> but its new top from <paramref name="from"/>.</summary>
    static void CopyBase(ConvNet from, ConvNet to)
    {
        string top = to.Spec.LogitsLayer + ".";
        var src = from.state_dict();
        using var noGrad = no_grad();
        foreach (var (k, t) in to.state_dict())
            if (!k.StartsWith(top, StringComparison.Ordinal)) t.copy_(src[k]);
    }

    /// <summary>SHA-256 over the parameters and buffers of the layers before <paramref name="firstTrainable"/>, in name order.</summary>
    public static string FrozenChecksum(ConvNet net, string firstTrainable)
    {
        var names = net.NamedLayers.Select(l => l.Name).ToList();
        int cut = names.IndexOf(firstTrainable);
        var frozen = names.Take(cut).Select(n => n + ".").ToList();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (k, t) in net.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!frozen.Any(f => k.StartsWith(f, StringComparison.Ordinal))) continue;
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(k));
            var c = t.detach().cpu().contiguous();
            sha.AppendData(c.bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    static void SaveLast(string stem, ConvNet net, TrainState s, JsonObject options)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, t) in net.state_dict()) tensors["net." + k] = t;
        foreach (var (k, t) in s.M) tensors["adam.m." + k] = t;
        foreach (var (k, t) in s.V) tensors["adam.v." + k] = t;
        foreach (var (k, t) in s.Best!) tensors["best." + k] = t;
        SafeTensors.Save(stem + ".last.safetensors", tensors);
        var json = new JsonObject
        {
            ["epochsDone"] = s.EpochsDone, ["steps"] = s.Steps, ["bestAccuracy"] = s.BestAccuracy, ["bestEpoch"] = s.BestEpoch,
            ["options"] = options.DeepClone(), ["history"] = JsonSerializer.SerializeToNode(s.History, Checkpoint.Json),
        };
        AtomicFile.WriteAllText(stem + ".last.json", json.ToJsonString(Checkpoint.Json));
    }

    static TrainState? LoadLast(string stem, ConvNet net, JsonObject options)
    {
        if (!File.Exists(stem + ".last.json") || !File.Exists(stem + ".last.safetensors"))
            throw new BadInputException($"--resume: there is no interrupted run of '{stem}' ({stem}.last.json is missing).");
        JsonObject json;
        try { json = JsonNode.Parse(Imaging.InputFile.ReadAllText(stem + ".last.json", "training state", 16 << 20))!.AsObject(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException)
        { throw new BadInputException($"--resume: '{stem}.last.json' is not a training state Reverie wrote."); }
        if (json["options"] is not JsonObject was)
            throw new BadInputException($"--resume: '{stem}.last.json' was written by an earlier Reverie, whose state this one does not read; train again without --resume.");
        foreach (var (key, value) in options)
            if (!ResumableChanges.Contains(key) && !JsonNode.DeepEquals(was[key], value))
                throw new BadInputException($"--resume: the interrupted run used a different {key} ({was[key]?.ToJsonString() ?? "none"}); resume it with the same options.");
        var tensors = SafeTensors.Load(stem + ".last.safetensors");
        var netState = tensors.Where(kv => kv.Key.StartsWith("net.")).ToDictionary(kv => kv.Key[4..], kv => kv.Value);
        net.LoadWeights(netState);
        return new TrainState
        {
            EpochsDone = json["epochsDone"]!.GetValue<int>(), Steps = json["steps"]!.GetValue<long>(),
            BestAccuracy = json["bestAccuracy"]!.GetValue<double>(), BestEpoch = json["bestEpoch"]!.GetValue<int>(),
            History = json["history"].Deserialize<List<EpochMetrics>>(Checkpoint.Json) ?? new(),
            M = tensors.Where(kv => kv.Key.StartsWith("adam.m.")).ToDictionary(kv => kv.Key[7..], kv => kv.Value),
            V = tensors.Where(kv => kv.Key.StartsWith("adam.v.")).ToDictionary(kv => kv.Key[7..], kv => kv.Value),
            Best = tensors.Where(kv => kv.Key.StartsWith("best.")).ToDictionary(kv => kv.Key[5..], kv => kv.Value),
        };
    }

    static void DeleteLast(string stem)
    {
        File.Delete(stem + ".last.json");
        File.Delete(stem + ".last.safetensors");
    }

    /// <summary>Loss and accuracy per epoch, drawn as a PNG.</summary>
    public static byte[] TrainingPng(string name, IReadOnlyList<EpochMetrics> h)
    {
        var x = h.Select(m => (double)m.Epoch).ToList();
        var loss = new LineChart("loss", "epoch", "cross-entropy", [new Series("training", x, h.Select(m => m.TrainLoss).ToList(), Plot.Palette[0]),
            new Series("validation", x, h.Select(m => m.ValidationLoss).ToList(), Plot.Palette[1])]) { LogY = true };
        var acc = new LineChart("accuracy", "epoch", "accuracy", [new Series("training", x, h.Select(m => m.TrainAccuracy).ToList(), Plot.Palette[0]),
            new Series("validation", x, h.Select(m => m.ValidationAccuracy).ToList(), Plot.Palette[1])]);
        return Plot.Render([loss, acc], 2, title: $"training {name}");
    }

    /// <summary>The confusion matrix drawn as a PNG (rows: true class; columns: predicted).</summary>
    public static byte[] ConfusionPng(string title, Evaluation e) =>
        Plot.Render([new ConfusionMatrix(title, e.Classes, e.Confusion)], 1, Math.Max(520, 200 + 52 * e.Classes.Count), Math.Max(420, 180 + 44 * e.Classes.Count));
}
