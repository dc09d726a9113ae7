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
        var cmd = new Command("evaluate", "Measure a classifier on labelled images: accuracy, per-class accuracy and a confusion matrix.") { model, data, split, classes, limit, output, CommonOptions.Force };
        // Without -o nothing is written: the table and the summary are the product.
        cmd.SetJob(new EvaluateJob(), output, p =>
        {
            string source = p.GetValue(data)!;
            return new EvaluateJobOptions
            {
                Model = CommonOptions.ModelName(p.GetValue(model)!),
                Data = CommonOptions.DataSource(source),
                Split = p.GetValue(split)!, Classes = p.GetValue(classes), Limit = p.GetValue(limit),
            };
        }, show: (inv, options, r) =>
        {
            if (r.Results is not EvaluateResults e) return;
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("images").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn("most confused with");
            foreach (var c in e.Classes)
                table.AddRow(Markup.Escape(c.Class), c.Images.ToString(CultureInfo.InvariantCulture), double.IsNaN(c.Accuracy) ? "-" : c.Accuracy.ToString("P2", CultureInfo.InvariantCulture),
                    c.ConfusedWith is null ? "" : Markup.Escape($"{c.ConfusedWith} ({c.Confused})"));
            table.AddRow("[bold]all[/]", e.Images.ToString(CultureInfo.InvariantCulture), $"[bold]{e.Accuracy.ToString("P2", CultureInfo.InvariantCulture)}[/]", "");
            inv.Results.Write(table);
        });
        return cmd;
    }
}
