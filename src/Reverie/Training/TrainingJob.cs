using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Models.Torch;
using SkiaSharp;
using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>Everything <c>reverie train</c> is asked to do.</summary>
internal sealed record TrainingJobOptions
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
    /// <summary>Trainer settings.</summary>
    public TrainOptions Train { get; init; } = new();
    /// <summary>Output stem: writes STEM.json, STEM.safetensors, STEM-training.png and, with a test split, STEM-confusion.png.</summary>
    public required string Output { get; init; }
    /// <summary>Continue an interrupted run of the same output.</summary>
    public bool Resume { get; init; }
    /// <summary>The command line, for the recipe.</summary>
    public IReadOnlyList<string>? CommandLine { get; init; }
}

/// <summary>What a training job produced.</summary>
internal sealed record TrainingJobResult(CheckpointInfo Checkpoint, TrainState State, Evaluation? Test, string? FrozenChecksumBefore, string? FrozenChecksumAfter);

/// <summary>
/// <c>reverie train</c> as a library call: opens the data, builds (or adapts) the network, trains with
/// validation, evaluates the best weights on the test split when there is one, and writes the checkpoint
/// (weights, architecture, input spec, labels, recipe, metrics) and its figures. Saves a resumable state
/// after every epoch (<c>STEM.last.json</c> and <c>.safetensors</c>), removed when the run ends.
/// </summary>
internal static class TrainingJob
{
    /// <summary>Runs the job.</summary>
    public static TrainingJobResult Run(TrainingJobOptions o, IProgress<TrainProgress>? progress = null, Action<string>? log = null, CancellationToken cancel = default)
    {
        TorchRuntime.Initialize();
        o.Train.Validate();
        if (o.Freeze && o.UnfreezeFrom is not null) throw new BadInputException("Use either --freeze (train only the new top) or --unfreeze-from LAYER, not both.");
        if ((o.Freeze || o.UnfreezeFrom is not null) && o.Base is null) throw new BadInputException("--freeze and --unfreeze-from need --base MODEL.");
        if (o.ValidationSplit is < 0 or >= 1) throw new BadInputException($"--val-split must be from 0 to below 1; got {o.ValidationSplit}.");
        string stem = Checkpoint.Stem(o.Output);
        if (Path.GetDirectoryName(Path.GetFullPath(stem)) is { } outDir && !Directory.Exists(outDir))
            throw new BadInputException($"The folder of --output, '{outDir}', does not exist.");

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
            if (o.PerClass > 0) all = Datasets.PerClass(all, o.PerClass, o.Train.Seed);
            var (train, val) = o.ValidationSplit > 0 ? Datasets.Split(all, o.ValidationSplit, o.Train.Seed) : (all, (IImageDataset?)null);
            log?.Invoke($"data: {train.Count} training, {val?.Count ?? 0} validation{(test is null ? "" : $", {test.Count} test")} images of {all.Classes.Count} classes");

            ConvNetSpec spec;
            Models.InputSpec input;
            if (baseNet is not null)
            {
                spec = baseNet.Spec.WithNewTop(all.Classes.Count);
                input = baseNet.Input;
                if (spec.InputChannels == 1 && !all.Gray)
                    log?.Invoke("note: the base takes gray images; colour images are converted");
            }
            else
            {
                spec = Architectures.Get(o.Arch, all.Classes.Count, o.Size);
                if (all.Height != spec.InputHeight || all.Width != spec.InputWidth)
                    log?.Invoke($"note: {all.Width}x{all.Height} images are resized to the network's {spec.InputWidth}x{spec.InputHeight}");
                input = Architectures.InputFor(spec, o.Arch);
            }
            string name = Path.GetFileName(stem);
            using var net = new ConvNet(name, spec, input, all.Classes, o.Train.Seed) { DreamLayer = o.DreamLayer ?? baseNet?.DreamLayer };
            string? trainableFrom = o.Train.TrainableFrom;
            if (baseNet is not null)
            {
                CopyBase(baseNet, net);
                trainableFrom = o.Freeze ? spec.LogitsLayer : o.UnfreezeFrom is { } u ? baseNet.ResolveLayer(u) : null;
            }
            var options = o.Train with
            {
                TrainableFrom = trainableFrom,
                Flip = o.Augment && o.Data != "textures",
                Shift = o.Augment && o.Data != "textures" ? Math.Max(o.Train.Shift, Math.Max(1, spec.InputHeight / 14)) : 0,
            };
            string? before = trainableFrom is null ? null : FrozenChecksum(net, trainableFrom);

            var recipe = new JsonObject
            {
                ["command"] = o.CommandLine is null ? null : new JsonArray(o.CommandLine.Select(a => (JsonNode)a).ToArray()),
                ["data"] = o.Data, ["classes"] = new JsonArray(all.Classes.Select(c => (JsonNode)c).ToArray()),
                ["perClass"] = o.PerClass, ["valSplit"] = o.ValidationSplit, ["arch"] = o.Base is null ? o.Arch : null,
                ["base"] = o.Base, ["freeze"] = o.Freeze, ["unfreezeFrom"] = o.UnfreezeFrom, ["trainableFrom"] = trainableFrom,
                ["epochs"] = options.Epochs, ["batch"] = options.BatchSize, ["lr"] = options.LearningRate, ["weightDecay"] = options.WeightDecay,
                ["seed"] = options.Seed, ["flip"] = options.Flip, ["shift"] = options.Shift, ["noise"] = options.Noise, ["textureCount"] = o.Data == "textures" ? o.TextureCount : null,
                ["adversarial"] = options.Adversarial == AdversarialTraining.None ? null : new JsonObject
                {
                    ["method"] = options.Adversarial == AdversarialTraining.Pgd ? "pgd" : "fgsm-rs", ["eps"] = options.AdversarialEps,
                    ["steps"] = options.Adversarial == AdversarialTraining.Pgd ? options.AdversarialSteps : 1,
                },
                ["threads"] = get_num_threads(), ["reverie"] = typeof(TrainingJob).Assembly.GetName().Version?.ToString(),
            };

            TrainState? resume = o.Resume ? LoadLast(stem, net, recipe) : null;
            if (resume is not null) log?.Invoke($"resuming after epoch {resume.EpochsDone} of {options.Epochs}");
            var trainer = new Trainer(net, options)
            {
                EpochDone = s =>
                {
                    var m = s.History[^1];
                    log?.Invoke($"epoch {m.Epoch}/{options.Epochs}: loss {m.TrainLoss:0.0000}, train accuracy {m.TrainAccuracy:P2}" +
                        (double.IsNaN(m.ValidationAccuracy) ? "" : $", validation {m.ValidationAccuracy:P2}") + $" ({m.Seconds:0} s)");
                    SaveLast(stem, net, s, recipe);
                },
            };
            var state = trainer.Run(train, val, resume, progress, cancel);
            net.LoadWeights(state.Best!);
            string? after = trainableFrom is null ? null : FrozenChecksum(net, trainableFrom);
            Evaluation? testEval = test is null ? null : Trainer.Evaluate(net, test, cancel: cancel);
            if (testEval is not null) log?.Invoke($"test accuracy {testEval.Accuracy:P2} on {testEval.Total} images");

            var metrics = new JsonObject
            {
                ["bestEpoch"] = state.BestEpoch,
                ["validationAccuracy"] = val is null ? null : state.History[state.BestEpoch - 1].ValidationAccuracy,
                ["trainAccuracy"] = state.History[state.BestEpoch - 1].TrainAccuracy,
                ["testAccuracy"] = testEval?.Accuracy,
                ["testImages"] = testEval?.Total,
                ["testPerClass"] = testEval is null ? null : new JsonObject(all.Classes.Select((c, i) => KeyValuePair.Create(c, (JsonNode?)Math.Round(testEval.PerClass[i], 5)))),
                ["frozenChecksumBefore"] = before, ["frozenChecksumAfter"] = after,
                ["history"] = JsonSerializer.SerializeToNode(state.History, Checkpoint.Json),
            };
            var info = Checkpoint.Save(stem, state.Best!, new CheckpointInfo
            {
                Name = name,
                Description = o.Base is null ? $"{spec.Layers.Count(l => l.Type == "conv")}-conv network trained on {o.Data}" : $"{Path.GetFileName(Checkpoint.Stem(o.Base))} with a new top for {all.Classes.Count} classes",
                Architecture = spec, Input = net.Input, Labels = all.Classes, DreamLayer = net.DreamLayer, Recipe = recipe, Metrics = metrics,
            });
            TrainingPlot(stem + "-training.png", name, state.History);
            if (testEval is not null) ConfusionPlot(stem + "-confusion.png", $"{name} on {test!.Name}", testEval);
            DeleteLast(stem);
            return new TrainingJobResult(info, state, testEval, before, after);
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

    static void SaveLast(string stem, ConvNet net, TrainState s, JsonObject recipe)
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
            ["recipe"] = recipe.DeepClone(), ["history"] = JsonSerializer.SerializeToNode(s.History, Checkpoint.Json),
        };
        AtomicFile.WriteAllText(stem + ".last.json", json.ToJsonString(Checkpoint.Json));
    }

    static TrainState? LoadLast(string stem, ConvNet net, JsonObject recipe)
    {
        if (!File.Exists(stem + ".last.json") || !File.Exists(stem + ".last.safetensors"))
            throw new BadInputException($"--resume: there is no interrupted run of '{stem}' ({stem}.last.json is missing).");
        var json = JsonNode.Parse(File.ReadAllText(stem + ".last.json"))!.AsObject();
        foreach (var key in new[] { "data", "classes", "perClass", "valSplit", "arch", "base", "seed", "batch", "trainableFrom", "noise", "adversarial" })
            if (!JsonNode.DeepEquals(json["recipe"]?[key], recipe[key]))
                throw new BadInputException($"--resume: the interrupted run used a different {key} ({json["recipe"]?[key]?.ToJsonString() ?? "none"}); resume it with the same options.");
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

    /// <summary>Loss and accuracy per epoch.</summary>
    public static void TrainingPlot(string path, string name, IReadOnlyList<EpochMetrics> h)
    {
        var x = h.Select(m => (double)m.Epoch).ToList();
        var loss = new LineChart("loss", "epoch", "cross-entropy", [new Series("training", x, h.Select(m => m.TrainLoss).ToList(), Plot.Palette[0]),
            new Series("validation", x, h.Select(m => m.ValidationLoss).ToList(), Plot.Palette[1])]) { LogY = true };
        var acc = new LineChart("accuracy", "epoch", "accuracy", [new Series("training", x, h.Select(m => m.TrainAccuracy).ToList(), Plot.Palette[0]),
            new Series("validation", x, h.Select(m => m.ValidationAccuracy).ToList(), Plot.Palette[1])]);
        Plot.Save(path, [loss, acc], 2, title: $"training {name}");
    }

    /// <summary>The confusion matrix as a picture (rows: true class, columns: predicted; cells show counts, shaded by row fraction).</summary>
    public static void ConfusionPlot(string path, string title, Evaluation e) => AtomicFile.WriteAllBytes(path, ConfusionPng(title, e));

    /// <summary>The confusion matrix drawn as a PNG (rows: true class; columns: predicted).</summary>
    public static byte[] ConfusionPng(string title, Evaluation e) =>
        Plot.Render([new ConfusionMatrix(title, e.Classes, e.Confusion)], 1, Math.Max(520, 200 + 52 * e.Classes.Count), Math.Max(420, 180 + 44 * e.Classes.Count));
}
