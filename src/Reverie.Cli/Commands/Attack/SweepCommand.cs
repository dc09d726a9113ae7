using Reverie.Training;
using Reverie.Adversarial;

namespace Reverie.Cli.Commands.Attack;

/// <summary><c>reverie attack sweep</c>: accuracy against eps for white-box, transfer and noise perturbations.</summary>
internal static class SweepCommand
{
    /// <summary>Opens --data at the model's input size, optionally restricted to classes and a number per class.</summary>
    public static IImageDataset OpenData(string source, INetwork net, string? classes, int? limit) => SweepJobOptions.OpenData(source, net, classes, limit);

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
        var output = CommonOptions.Output("CSV file; the plot goes beside it as .png.");
        var cmd = new Command("sweep", "Accuracy against eps, at each number of steps: white-box, black-box transfer from a surrogate, and random sign noise of the same eps.")
            { model, data, eps, steps, surrogate, classes, limit, seed, output, CommonOptions.Force };
        cmd.SetJob(new SweepJob(), output, p =>
        {
            string source = p.GetValue(data)!;
            return new SweepJobOptions
            {
                Model = CommonOptions.ModelName(p.GetValue(model)!), Seed = p.GetValue(seed),
                Data = CommonOptions.DataSource(source),
                Eps = ParseList(p.GetValue(eps)!, "--eps", s => double.Parse(s, CultureInfo.InvariantCulture)),
                Steps = ParseList(p.GetValue(steps)!, "--steps", s => int.Parse(s, CultureInfo.InvariantCulture)),
                Surrogate = p.GetValue(surrogate) is { } sg ? CommonOptions.ModelName(sg) : null,
                Classes = p.GetValue(classes), Limit = p.GetValue(limit),
            };
        }, show: (inv, options, r) =>
        {
            if (r.Results is not SweepResults sweep) return;
            var table = new Table().AddColumn("eps");
            var columns = options.Steps.SelectMany(t => new[] { PerturbationKind.WhiteBox, PerturbationKind.Transfer, PerturbationKind.Noise }
                .Where(k => k != PerturbationKind.Transfer || sweep.Surrogate is not null).Select(k => (t, k))).ToList();
            foreach (var (t, k) in columns) table.AddColumn(new TableColumn($"{Robustness.Name(k)} T={t}").RightAligned());
            foreach (var e in options.Eps)
                table.AddRow([e.ToString(CultureInfo.InvariantCulture), .. columns.Select(c => sweep.Rows.First(row => row.Eps == e && row.Steps == c.t && row.Kind == c.k).Accuracy.ToString("P1", CultureInfo.InvariantCulture))]);
            inv.Results.Write(table);
        });
        return cmd;
    }
}
