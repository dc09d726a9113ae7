using Reverie.Science;

namespace Reverie.Cli.Commands.Science;

/// <summary><c>reverie science copernicus</c>: what an autoencoder's latent neurons learn about the solar system.</summary>
internal static class ScienceCommand
{
    public static Command Create()
    {
        var cmd = new Command("science", "Scientific experiments on what networks learn.");
        cmd.Subcommands.Add(Copernicus());
        cmd.Subcommands.Add(Shortcut());
        return cmd;
    }

    static Command Shortcut()
    {
        var d = new ShortcutJobOptions();
        var output = CommonOptions.Output("The sheet of explained examples (.png); the plots go beside it as OUT-plots.png.");
        var train = new Option<int>("--train") { Description = "Training images of each network.", DefaultValueFactory = _ => d.Train };
        var test = new Option<int>("--test") { Description = "Test images (each with its stamp matched, random and swapped).", DefaultValueFactory = _ => d.Test };
        var explained = new Option<int>("--explained") { Description = "Test images whose maps are measured.", DefaultValueFactory = _ => d.Explained };
        var size = new Option<int>("--size") { Description = "Side of the images in pixels.", DefaultValueFactory = _ => d.Size };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training images.", DefaultValueFactory = _ => d.Epochs };
        var methods = new Option<string[]>("--method", "--methods") { Description = $"Explanation methods to measure (comma-separated or repeated): {string.Join(", ", Reverie.Explaining.ExplainJobOptions.AllMethods)}.", DefaultValueFactory = _ => [.. d.Methods] };
        var noRandom = new Option<bool>("--no-random-labels") { Description = "Skip the third network (permuted labels) and the label-randomization check." };
        var seed = CommonOptions.SeedOption("the weights, the batches and the permuted labels", d.Seed);
        var cmd = new Command("shortcut", "Train a network where a coloured stamp gives the answer away, and show with explanation maps that it reads the stamp, not the shapes.")
            { output, train, test, explained, size, epochs, methods, noRandom, seed, CommonOptions.Force };
        cmd.SetJob(new ShortcutJob(), output, p =>
        {
            TrainingThreads(p);
            return new ShortcutJobOptions
            {
                Train = p.GetValue(train), Test = p.GetValue(test), Explained = p.GetValue(explained), Size = p.GetValue(size), Epochs = p.GetValue(epochs),
                Methods = p.GetValue(methods)!.SelectMany(m => m.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).Distinct().ToList(),
                RandomLabels = !p.GetValue(noRandom), Seed = p.GetValue(seed),
            };
        }, show: (inv, options, r) =>
        {
            if (r.Results is not ShortcutResults results) return;
            var acc = new Table().Title("test accuracy by the stamp's colour").AddColumn("network").AddColumn("trained on")
                .AddColumn(new TableColumn("training").RightAligned()).AddColumn(new TableColumn("stamp matches").RightAligned()).AddColumn(new TableColumn("random").RightAligned()).AddColumn(new TableColumn("swapped").RightAligned());
            foreach (var n in results.Networks)
                acc.AddRow(Markup.Escape(n.Name), Markup.Escape(n.Trained), $"{100 * n.TrainAccuracy:0.0}%", $"{100 * n.Matched:0.0}%", $"{100 * n.Random:0.0}%", $"{100 * n.Swapped:0.0}%");
            inv.Results.Write(acc);
            var maps = new Table().Title($"share of |map| on the stamp ({100 * results.StampArea:0.#}% of the area) and on the shape ({100 * results.ShapeArea:0.#}%)")
                .AddColumn("method").AddColumn(new TableColumn("with cue: stamp").RightAligned()).AddColumn(new TableColumn("shape").RightAligned())
                .AddColumn(new TableColumn("without: stamp").RightAligned()).AddColumn(new TableColumn("shape").RightAligned());
            if (results.Methods.All(m => m.LabelRandomization is not null))
                maps.AddColumn(new TableColumn("ρ true vs permuted labels").RightAligned());
            foreach (var m in results.Methods)
            {
                var cells = new List<string> { Markup.Escape(m.Title), $"{m.StampWithCue:0.00}", $"{m.ShapeWithCue:0.00}", $"{m.StampWithoutCue:0.00}", $"{m.ShapeWithoutCue:0.00}" };
                if (m.LabelRandomization is { } rho) cells.Add($"{rho:0.00}");
                maps.AddRow(cells.ToArray());
            }
            inv.Results.Write(maps);
        });
        return cmd;
    }

    static Command Copernicus()
    {
        var d = new CopernicusOptions();
        var samples = new Option<int>("--samples") { Description = "Training series.", DefaultValueFactory = _ => d.Samples };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training series.", DefaultValueFactory = _ => d.Epochs };
        var length = new Option<int>("--series-length") { Description = "Weekly observations per training series.", DefaultValueFactory = _ => d.SeriesLength };
        var seed = CommonOptions.SeedOption("the data, the weights and the batches", d.Seed);
        var beta = new Option<double>("--beta") { Description = "Weight of the β-VAE penalty.", DefaultValueFactory = _ => d.Beta };
        var lr = new Option<double>("--lr") { Description = "Adam's initial learning rate (cosine decay).", DefaultValueFactory = _ => d.LearningRate };
        var batch = new Option<int>("--batch") { Description = "Series per batch.", DefaultValueFactory = _ => d.Batch };
        var output = CommonOptions.Output("Folder for the trained network (scinet.dat), its recipe with the results (scinet.recipe.json) and the plots; made if missing.");
        var cmd = new Command("copernicus", "Train SciNet on the Sun and Mars seen from Earth, then check whether its two latent neurons are heliocentric angles.")
            { samples, epochs, length, seed, beta, lr, batch, output, CommonOptions.Force };
        cmd.SetJob(new CopernicusJob(), output, p =>
        {
            var options = new CopernicusOptions
            {
                Samples = p.GetValue(samples), Epochs = p.GetValue(epochs), SeriesLength = p.GetValue(length), Seed = p.GetValue(seed),
                Beta = p.GetValue(beta), LearningRate = p.GetValue(lr), Batch = p.GetValue(batch),
            };
            options.Validate(); // before the folder is made
            TrainingThreads(p);
            return options;
        }, show: (inv, options, r) =>
        {
            if (r.Results is not CopernicusResults results) return;
            var table = new Table().AddColumn("latent").AddColumn(new TableColumn("R² heliocentric (φE, φM)").RightAligned())
                .AddColumn("fit").AddColumn(new TableColumn("R² geocentric (θS, θM)").RightAligned())
                .AddColumn(new TableColumn("step: learned / from fit").RightAligned());
            foreach (var n in results.Neurons)
                table.AddRow($"r{n.Neuron}", n.Heliocentric.R2.ToString("0.0000", CultureInfo.InvariantCulture),
                    Markup.Escape($"{n.Heliocentric.W1:0.###}·φE {(n.Heliocentric.W2 < 0 ? "-" : "+")} {Math.Abs(n.Heliocentric.W2):0.###}·φM"),
                    n.Geocentric.R2.ToString("0.0000", CultureInfo.InvariantCulture), $"{n.StepLearned:0.0000} / {n.StepFromFit:0.0000}");
            inv.Results.Write(table);
        }, outputPath: dir =>
        {
            if (File.Exists(dir)) throw new BadInputException($"'{BadInputException.Shown(dir)}' is a file; --output must be a folder.");
            Directory.CreateDirectory(dir);
            return Path.Combine(dir, "scinet.dat");
        });
        return cmd;
    }

    /// <summary>Both experiments train: without --threads they take up to 4 cores rather than torch's default.</summary>
    static void TrainingThreads(ParseResult p)
    {
        if (p.GetValue(ReverieCli.Threads) is null) TorchSharp.torch.set_num_threads(Math.Min(Environment.ProcessorCount, 4));
    }
}
