using Reverie.Adversarial;

namespace Reverie.Cli.Commands.Attack;

/// <summary><c>reverie attack benchmark</c>: robust accuracy under a suite of attacks, the worst case per image, as AutoAttack reports it.</summary>
internal static class BenchmarkCommand
{
    public static Command Create()
    {
        var model = CommonOptions.ModelOption("The model attacked", "fashion");
        var data = new Option<string>("--data") { Description = "Labelled images: fashion-mnist, textures or an ImageFolder (test split where there is one).", Required = true };
        var classes = new Option<string?>("--classes") { Description = "Only these classes, comma-separated." };
        var n = new Option<int>("--n") { Description = "How many images, drawn evenly from the classes.", DefaultValueFactory = _ => 1000 };
        var eps = new Option<string>("--eps") { Description = "Comma-separated budgets (L-infinity in 0..1 pixel units, or L2 radii with --norm l2).", DefaultValueFactory = _ => "0.03" };
        var norm = new Option<string>("--norm") { Description = "linf or l2 (l2: the APGD and PGD attacks only).", DefaultValueFactory = _ => "linf" };
        var suite = new Option<string>("--suite") { Description = $"Comma-separated attacks, from {string.Join(", ", BenchmarkSettings.Known)}; default AutoAttack's standard suite without FAB.", DefaultValueFactory = _ => string.Join(",", BenchmarkSettings.Standard) };
        var steps = new Option<int>("--steps") { Description = "Iterations of each gradient attack (apgd-t: per target class).", DefaultValueFactory = _ => 100 };
        var queries = new Option<int>("--queries") { Description = "The query budget per image of the black boxes (square, hopskipjump).", DefaultValueFactory = _ => 5000 };
        var targets = new Option<int>("--targets") { Description = "apgd-t: how many of the highest-scoring other classes it tries.", DefaultValueFactory = _ => 9 };
        var batch = new Option<int>("--batch") { Description = "Images attacked at once.", DefaultValueFactory = _ => 250 };
        var seed = CommonOptions.SeedOption("the image draw, the random starts and Square's draws");
        var output = CommonOptions.Output("The report (.json); the Markdown table (.md) and the plot of robust accuracy against eps (.png) go beside it.");
        var cmd = new Command("benchmark", "Robust accuracy under a suite of attacks (default APGD-CE, APGD-T, Square): per attack and in the worst case per image, with time and queries; JSON, Markdown and a plot.")
            { model, data, classes, n, eps, norm, suite, steps, queries, targets, batch, seed, output, CommonOptions.Force };
        cmd.SetJob(new AttackBenchmarkJob(), output, p =>
        {
            string source = p.GetValue(data)!;
            return new AttackBenchmarkJobOptions
            {
                Model = CommonOptions.ModelName(p.GetValue(model)!),
                Data = CommonOptions.DataSource(source),
                Classes = p.GetValue(classes),
                Images = p.GetValue(n),
                Eps = SweepCommand.ParseList(p.GetValue(eps)!, "--eps", s => double.Parse(s, CultureInfo.InvariantCulture)),
                Norm = p.GetValue(norm)!,
                Suite = p.GetValue(suite)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                Steps = p.GetValue(steps),
                Queries = p.GetValue(queries),
                Targets = p.GetValue(targets),
                Batch = p.GetValue(batch),
                Seed = p.GetValue(seed),
            };
        }, show: (inv, options, r) =>
        {
            if (r.Results is not BenchmarkSummary s) return;
            var table = new Table().AddColumn("eps").AddColumn(new TableColumn("clean").RightAligned());
            foreach (var a in options.Suite) table.AddColumn(new TableColumn(a).RightAligned());
            table.AddColumn(new TableColumn("worst case").RightAligned());
            foreach (var row in s.Rows)
                table.AddRow([row.Eps.ToString(CultureInfo.InvariantCulture), row.CleanAccuracy.ToString("P1", CultureInfo.InvariantCulture),
                    .. options.Suite.Select(a => row.RobustAccuracy[a].ToString("P1", CultureInfo.InvariantCulture)), row.WorstCase.ToString("P1", CultureInfo.InvariantCulture)]);
            inv.Results.Write(table);
        });
        return cmd;
    }
}
