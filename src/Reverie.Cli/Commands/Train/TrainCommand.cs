using Reverie.Training;

namespace Reverie.Cli.Commands.Train;

/// <summary><c>reverie train</c>: train a classifier, from scratch or on top of a frozen base.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var d = new TrainOptions();
        var data = new Option<string>("--data") { Description = "fashion-mnist, textures, or an ImageFolder (one subfolder of PNG/JPEG images per class).", Required = true };
        var arch = new Option<string>("--arch") { Description = $"Architecture: {string.Join(", ", Architectures.Names)}, or a JSON file.", DefaultValueFactory = _ => "small" };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training images.", DefaultValueFactory = _ => d.Epochs };
        var output = CommonOptions.Output("Checkpoint to write: MODEL.json and MODEL.safetensors (plus MODEL.recipe.json, MODEL-training.png, MODEL-confusion.png).");
        var batch = new Option<int>("--batch") { Description = "Images per step.", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate of AdamW (cosine decay).", DefaultValueFactory = _ => d.LearningRate };
        var valSplit = new Option<double>("--val-split") { Description = "Fraction of the training images held out for validation; 0 keeps the last epoch.", DefaultValueFactory = _ => 0.1 };
        var seed = CommonOptions.SeedOption("the initial weights, shuffles, augmentation and dropout");
        var resume = new Option<bool>("--resume") { Description = "Continue an interrupted run of the same --output, from its last finished epoch." };
        var baseModel = new Option<string?>("--base") { Description = "Start from this checkpoint or embedded model (fashion, fashion-mlp, fashion-robust, textures); its top (the dense layers) is replaced by a new dense softmax layer for the new classes." };
        var freeze = new Option<bool>("--freeze") { Description = "With --base: train only the new top layer." };
        var unfreezeFrom = new Option<string?>("--unfreeze-from") { Description = "With --base: train this layer and the ones after it; earlier layers stay frozen." };
        var classes = new Option<string?>("--classes") { Description = "Only these classes, comma-separated (e.g. \"Sneaker,Ankle boot\")." };
        var perClass = new Option<int>("--per-class") { Description = "At most this many training images per class." };
        var size = new Option<int>("--size") { Description = "Image size for ImageFolder data and the 'small' architecture (default 128)." };
        var textures = new Option<int>("--textures") { Description = "Images in the generated texture training set.", DefaultValueFactory = _ => 17 * 1000 };
        var noAugment = new Option<bool>("--no-augment") { Description = "No random flips and shifts." };
        var noise = new Option<double>("--noise") { Description = "Add Gaussian pixel noise to training images, each with its own σ from 0 to this (robustness to noise)." };
        var adversarial = new Option<string>("--adversarial") { Description = "Adversarial training: pgd (Madry et al.: PGD in the L-infinity ball, --adversarial-steps of 2.5·eps/steps from a random start) or fgsm-rs (Wong et al. 2020: one step of 1.25·eps from a random start, about as cheap as two clean steps); none trains on the clean images.", DefaultValueFactory = _ => "none" };
        var advEps = new Option<double>("--eps") { Description = "With --adversarial: the L-infinity budget in 0..1 pixel units.", DefaultValueFactory = _ => d.AdversarialEps };
        var advSteps = new Option<int>("--adversarial-steps") { Description = "With --adversarial pgd: PGD's steps.", DefaultValueFactory = _ => d.AdversarialSteps };
        var dreamLayer = new Option<string?>("--dream-layer") { Description = "The layer 'reverie dream' uses by default with this model." };
        var cmd = new Command("train", "Train a classifier on Fashion-MNIST, generated textures or your own folders of images; with --base, retrain the top of a trained model (transfer learning).")
            { data, arch, epochs, output, batch, lr, valSplit, seed, resume, baseModel, freeze, unfreezeFrom, classes, perClass, size, textures, noAugment, noise, adversarial, advEps, advSteps, dreamLayer, CommonOptions.Force };
        cmd.SetJob(new TrainingJob(), output, p =>
        {
            var adv = p.GetValue(adversarial) switch
            {
                "none" => AdversarialTraining.None,
                "pgd" => AdversarialTraining.Pgd,
                "fgsm-rs" => AdversarialTraining.FgsmRs,
                var x => throw new BadInputException($"--adversarial must be none, pgd or fgsm-rs; got '{BadInputException.Shown(x)}'."),
            };
            // 0 would mean "every image": said so, it is refused rather than read as that.
            if (p.GetResult(perClass) is { Implicit: false } && p.GetValue(perClass) < 1)
                throw new BadInputException($"--per-class must be at least 1 (leave it out for every image); got {p.GetValue(perClass)}.");
            if (adv == AdversarialTraining.None && (p.GetResult(advEps) is { Implicit: false } || p.GetResult(advSteps) is { Implicit: false }))
                throw new BadInputException("--eps and --adversarial-steps go with --adversarial pgd or fgsm-rs.");
            return new TrainingJobOptions
            {
                Data = p.GetValue(data)!, Arch = p.GetValue(arch)!, Base = p.GetValue(baseModel), Freeze = p.GetValue(freeze), UnfreezeFrom = p.GetValue(unfreezeFrom),
                Classes = p.GetValue(classes)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                PerClass = p.GetValue(perClass), ValidationSplit = p.GetValue(valSplit), TextureCount = p.GetValue(textures), Size = p.GetValue(size),
                Augment = !p.GetValue(noAugment), DreamLayer = p.GetValue(dreamLayer), Resume = p.GetValue(resume),
                Epochs = p.GetValue(epochs), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), Seed = p.GetValue(seed), Noise = p.GetValue(noise),
                Adversarial = adv, AdversarialEps = p.GetValue(advEps), AdversarialSteps = p.GetValue(advSteps),
            };
        }, show: (inv, options, r) =>
        {
            if (r.Results is not TrainingResults results) return;
            if (results.TestPerClass is { } perClassAccuracy)
            {
                var table = new Table().AddColumn("class").AddColumn(new TableColumn("test accuracy").RightAligned());
                foreach (var (name, accuracy) in perClassAccuracy)
                    table.AddRow(Markup.Escape(name), accuracy.ToString("P2", CultureInfo.InvariantCulture));
                table.AddRow("[bold]all[/]", $"[bold]{results.TestAccuracy!.Value.ToString("P2", CultureInfo.InvariantCulture)}[/]");
                inv.Results.Write(table);
            }
            if (results.FrozenChecksumBefore is { } before)
                inv.Results.WriteLine($"frozen layers {(before == results.FrozenChecksumAfter ? "unchanged" : "CHANGED")} (SHA-256 {before[..16]}…)");
        }, outputPath: o => Checkpoint.Stem(o) + ".json");
        return cmd;
    }
}
