using Reverie.Adversarial;
using Reverie.Training;

namespace Reverie.Cli.Commands.Attack;

/// <summary><c>reverie attack sweep</c>: accuracy against eps for white-box, transfer and noise perturbations.</summary>
internal static class SweepCommand
{
    /// <summary>Opens --data at the model's input size, optionally restricted to classes and a number per class.</summary>
    public static IImageDataset OpenData(string source, INetwork net, string? classes, int? limit)
    {
        bool test = !Directory.Exists(source);
        var set = Datasets.Open(source, test, 0, net.Input.Height);
        if (classes is not null) set = Datasets.SelectClasses(set, classes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        if (limit is { } l) set = Datasets.PerClass(set, l, 0);
        return set;
    }

    public static List<T> ParseList<T>(string text, string option, Func<string, T> parse)
    {
        try { return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(parse).ToList(); }
        catch (FormatException) { throw new BadInputException($"{option} must be a comma-separated list of numbers; got '{text}'."); }
    }

    public static Command Create()
    {
        var model = CommonOptions.ModelOption("The model attacked", null);
        var data = new Option<string>("--data") { Description = "Labelled images: fashion-mnist, textures or an ImageFolder (test split where there is one).", Required = true };
        var eps = new Option<string>("--eps") { Description = "Comma-separated budgets in 0..1 pixel units.", DefaultValueFactory = _ => "0,0.01,0.02,0.05,0.1,0.15,0.2,0.3" };
        var steps = new Option<string>("--steps") { Description = "Comma-separated step counts: 1 is FGSM, more is BIM with step eps/T.", DefaultValueFactory = _ => "1,10" };
        var surrogate = new Option<string?>("--surrogate") { Description = "Also attack through this model (black-box transfer)." };
        var classes = new Option<string?>("--classes") { Description = "Only these classes, comma-separated." };
        var limit = CommonOptions.Limit("At most this many images per class");
        var seed = CommonOptions.SeedOption("the noise");
        var output = new Option<string>("--output", "-o") { Description = "CSV file; the plot goes beside it as .png.", Required = true };
        var cmd = new Command("sweep", "Accuracy against eps, at each number of steps: white-box, black-box transfer from a surrogate, and random sign noise of the same eps.")
            { model, data, eps, steps, surrogate, classes, limit, seed, output };
        cmd.SetAction(async inv =>
        {
            var (p, cancel, err) = (inv.Parse, inv.Cancel, inv.Err);
            var epsList = ParseList(p.GetValue(eps)!, "--eps", s => double.Parse(s, CultureInfo.InvariantCulture));
            var stepList = ParseList(p.GetValue(steps)!, "--steps", s => int.Parse(s, CultureInfo.InvariantCulture));
            if (epsList.Count == 0 || epsList.Any(e => e is < 0 or > 1)) throw new BadInputException("--eps values must be from 0 to 1.");
            if (stepList.Count == 0 || stepList.Any(t => t is < 1 or > 10000)) throw new BadInputException("--steps values must be from 1 to 10000.");
            string outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must be a .csv file; got '{outPath}'.");
            var registry = ModelLoading.Registry(p);
            using var net = await ModelLoading.OpenAsync(registry, p.GetValue(model)!, err, cancel);
            using var sur = p.GetValue(surrogate) is { } s ? await ModelLoading.OpenAsync(registry, s, err, cancel) : null;
            var set = OpenData(p.GetValue(data)!, net, p.GetValue(classes), p.GetValue(limit));
            var rows = await CliRun.WithBar(err, events => Robustness.Sweep(net, sur, set, epsList, stepList, p.GetValue(seed),
                new SyncProgress<(int Done, int Total)>(d => events.Report(CliRun.Step($"sweeping {set.Count} images", d.Done, d.Total, 1))), cancel));
            Imaging.AtomicFile.WriteAllText(outPath, Robustness.Csv(rows));
            string plot = Path.ChangeExtension(outPath, ".png");
            Robustness.SweepPlot(plot, $"{net.Name} on {set.Name} ({set.Count} images){(sur is null ? "" : $", surrogate {sur.Name}")}", rows);
            var table = new Table().AddColumn("eps");
            var columns = stepList.SelectMany(t => new[] { PerturbationKind.WhiteBox, PerturbationKind.Transfer, PerturbationKind.Noise }
                .Where(k => k != PerturbationKind.Transfer || sur is not null).Select(k => (t, k))).ToList();
            foreach (var (t, k) in columns) table.AddColumn(new TableColumn($"{Robustness.Name(k)} T={t}").RightAligned());
            foreach (var e in epsList)
                table.AddRow([e.ToString(CultureInfo.InvariantCulture), .. columns.Select(c => rows.First(r => r.Eps == e && r.Steps == c.t && r.Kind == c.k).Accuracy.ToString("P1", CultureInfo.InvariantCulture))]);
            var o = ReverieCli.ResultConsole(p.InvocationConfiguration.Output);
            o.Write(table);
            o.WriteLine($"{outPath}, {plot}");
            return ReverieCli.Ok;
        });
        return cmd;
    }
}
