using Reverie.Training;

namespace Reverie.Cli.Commands.Evaluate;

/// <summary><c>reverie evaluate</c>: accuracy, per-class accuracy and a confusion matrix of a model on labelled images.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.ModelOption("Model (fashion, textures, googlenet…)", null);
        var data = new Option<string>("--data") { Description = "fashion-mnist, textures, or an ImageFolder whose subfolder names are the model's class names.", Required = true };
        var split = new Option<string>("--split") { Description = "test or train (fashion-mnist and textures).", DefaultValueFactory = _ => "test" };
        var classes = new Option<string?>("--classes") { Description = "Only these classes, comma-separated." };
        var limit = CommonOptions.Limit("Evaluate at most this many images per class");
        var output = new Option<string?>("--output", "-o") { Description = "Confusion matrix picture (.png)." };
        var cmd = new Command("evaluate", "Measure a classifier on labelled images: accuracy, per-class accuracy and a confusion matrix.") { model, data, split, classes, limit, output };
        cmd.SetAction(async inv =>
        {
            var (p, cancel, err) = (inv.Parse, inv.Cancel, inv.Err);
            bool test = p.GetValue(split) switch
            {
                "test" => true,
                "train" => false,
                var s => throw new BadInputException($"--split must be test or train; got '{s}'."),
            };
            string source = p.GetValue(data)!;
            if (Directory.Exists(source)) test = false;
            string? outPath = p.GetValue(output);
            if (outPath is not null && !outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must be a .png file; got '{outPath}'.");
            var registry = ModelLoading.Registry(p);
            using var net = await ModelLoading.OpenAsync(registry, p.GetValue(model)!, err, cancel);
            var set = Datasets.Open(source, test, 0, net.Input.Height);
            if (p.GetValue(classes) is { } cls) set = Datasets.SelectClasses(set, cls.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
            if (p.GetValue(limit) is { } l) set = Datasets.PerClass(set, l, 0);
            var result = await CliRun.WithBar(err, events => Trainer.Evaluate(net, set,
                progress: new SyncProgress<(int Done, int Total)>(d => events.Report(CliRun.Step($"evaluating {net.Name}", d.Done, set.Count, 1))), cancel: cancel));
            var outw = ReverieCli.ResultConsole(p.InvocationConfiguration.Output);
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("images").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn("most confused with");
            var per = result.PerClass;
            for (int i = 0; i < result.Classes.Count; i++)
            {
                long n = Enumerable.Range(0, result.Classes.Count).Sum(j => result.Confusion[i, j]);
                int worst = Enumerable.Range(0, result.Classes.Count).Where(j => j != i).OrderByDescending(j => result.Confusion[i, j]).FirstOrDefault(-1);
                string confused = worst >= 0 && result.Confusion[i, worst] > 0 ? $"{result.Classes[worst]} ({result.Confusion[i, worst]})" : "";
                table.AddRow(Markup.Escape(result.Classes[i]), n.ToString(CultureInfo.InvariantCulture), double.IsNaN(per[i]) ? "-" : per[i].ToString("P2", CultureInfo.InvariantCulture), Markup.Escape(confused));
            }
            table.AddRow("[bold]all[/]", result.Total.ToString(CultureInfo.InvariantCulture), $"[bold]{result.Accuracy.ToString("P2", CultureInfo.InvariantCulture)}[/]", "");
            outw.Write(table);
            outw.WriteLine($"accuracy {result.Accuracy.ToString("P2", CultureInfo.InvariantCulture)} on {result.Total} images of {set.Name}; mean cross-entropy {result.Loss.ToString("0.0000", CultureInfo.InvariantCulture)}");
            if (outPath is not null)
            {
                TrainingJob.ConfusionPlot(outPath, $"{net.Name} on {set.Name}", result);
                outw.WriteLine($"confusion matrix: {outPath}");
            }
            return ReverieCli.Ok;
        });
        return cmd;
    }
}
