using Reverie.Adversarial;

namespace Reverie.Cli.Commands.Fool;

/// <summary><c>reverie fool</c>: evolve images a classifier is sure about although they show nothing of the class.</summary>
internal static class FoolCommand
{
    public static Command Create()
    {
        var d = new FoolJobOptions();
        var model = CommonOptions.ModelOption("The classifier to fool (only its outputs are used)", null);
        var cls = new Option<string[]>("--class") { Description = "Class to fool (name or index); repeatable." };
        var all = new Option<bool>("--all-classes") { Description = "Every class of the model." };
        var encoding = new Option<string>("--encoding") { Description = "direct (one gene per pixel) or cppn (a pattern-producing network).", DefaultValueFactory = _ => "cppn" };
        var generations = new Option<int>("--generations") { Description = "Generations.", DefaultValueFactory = _ => d.Generations };
        var population = new Option<int>("--population") { Description = "Individuals per generation.", DefaultValueFactory = _ => d.Population };
        var mapElites = new Option<bool>("--map-elites") { Description = "One MAP-Elites run over all the classes (an archive cell per class) instead of one run per class." };
        var seed = CommonOptions.SeedOption("the evolution");
        var output = new Option<string>("--output", "-o") { Description = "Folder for the images, fooling.png (the sheet, its recipe beside it), fooling.csv (the log) and fooling.json (the results).", Required = true };
        var cmd = new Command("fool", "Evolve fooling images: pictures a classifier labels with high confidence that show nothing of the class (black-box: outputs only).")
            { model, cls, all, encoding, generations, population, mapElites, seed, output, CommonOptions.Force };
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            string dir = p.GetValue(output)!;
            if (File.Exists(dir)) throw new BadInputException($"'{BadInputException.Shown(dir)}' is a file; --output must be a folder.");
            var options = new FoolJobOptions
            {
                Model = CommonOptions.ModelName(p.GetValue(model)!), Seed = p.GetValue(seed),
                Classes = p.GetValue(cls) ?? [], AllClasses = p.GetValue(all), Encoding = p.GetValue(encoding)!,
                Generations = p.GetValue(generations), Population = p.GetValue(population), MapElites = p.GetValue(mapElites),
            };
            options.Validate();
            // The folder is made for the run, and removed again if the run leaves nothing in it (bad input, Ctrl+C).
            bool made = !Directory.Exists(dir);
            Directory.CreateDirectory(dir);
            try
            {
                return await CliRun.RunJob(inv, new FoolJob(), options, Path.Combine(dir, "fooling.png"), show: r =>
                {
                    if (r.Results is not FoolResults found) return;
                    var table = new Table().AddColumn("class").AddColumn(new TableColumn("confidence").RightAligned()).AddColumn(new TableColumn("found at generation").RightAligned());
                    foreach (var f in found.Classes) table.AddRow(Markup.Escape($"{f.Class} {f.Label}"), f.Confidence.ToString("0.0000", CultureInfo.InvariantCulture), f.Generation.ToString(CultureInfo.InvariantCulture));
                    inv.Results.Write(table);
                });
            }
            finally
            {
                if (made && Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
            }
        });
        return cmd;
    }
}
