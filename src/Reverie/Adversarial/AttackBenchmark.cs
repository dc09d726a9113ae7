using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Training;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>The settings of a robustness benchmark: the suite, the budgets, and each attack's effort.</summary>
/// <param name="Suite">Attack names, run in this order: apgd-ce, apgd-dlr, apgd-t, square, pgd, fgsm.</param>
/// <param name="Eps">The budgets (L∞ in 0..1 pixel units, or L2 radii).</param>
/// <param name="L2">Whether the budgets are L2 radii (APGD and PGD only).</param>
/// <param name="Steps">Iterations of each gradient attack (APGD-T: per target class).</param>
/// <param name="Queries">The black boxes' (Square's, HopSkipJump's) query budget per image.</param>
/// <param name="Targets">APGD-T: how many of the highest-scoring other classes it tries, one after another.</param>
/// <param name="Seed">Random starts and Square's draws.</param>
/// <param name="Batch">Images attacked at once.</param>
internal sealed record BenchmarkSettings(IReadOnlyList<string> Suite, IReadOnlyList<double> Eps, bool L2 = false, int Steps = 100, int Queries = 5000, int Targets = 9, int Seed = 0, int Batch = 250)
{
    /// <summary>AutoAttack's standard suite without FAB: APGD-CE, APGD-T (DLR, targeted), Square.</summary>
    public static readonly IReadOnlyList<string> Standard = ["apgd-ce", "apgd-t", "square"];
    /// <summary>Every attack a suite may name.</summary>
    public static readonly IReadOnlyList<string> Known = ["apgd-ce", "apgd-dlr", "apgd-t", "square", "hopskipjump", "pgd", "fgsm"];

    /// <summary>Raises <see cref="BadInputException"/> for settings that cannot run.</summary>
    public void Validate()
    {
        if (Suite.Count == 0) throw new BadInputException("--suite names no attack.");
        foreach (var a in Suite)
            if (!Known.Contains(a)) throw new BadInputException($"--suite: unknown attack '{BadInputException.Shown(a)}'; known: {string.Join(", ", Known)}.");
        if (Suite.Distinct().Count() != Suite.Count) throw new BadInputException("--suite names an attack twice.");
        if (L2 && Suite.FirstOrDefault(a => a is "square" or "fgsm") is { } l2Less)
            throw new BadInputException($"{l2Less} is built for L-infinity only; drop it from --suite for --norm l2.");
        if (!L2 && Suite.Contains("hopskipjump"))
            throw new BadInputException("hopskipjump is built for L2 only; give --norm l2 or drop it from --suite.");
        if (Eps.Count == 0) throw new BadInputException("--eps names no budget.");
        foreach (var e in Eps)
            if (!(e >= 0) || e > (L2 ? 10_000 : 1)) throw new BadInputException($"--eps values must be from 0 to {(L2 ? "10000 (L2 radii)" : "1")}; got {e}.");
        if (Steps is < 1 or > 10_000) throw new BadInputException($"--steps must be from 1 to 10000; got {Steps}.");
        if (Queries is < 1 or > 100_000) throw new BadInputException($"--queries must be from 1 to 100000; got {Queries}.");
        if (Targets is < 1 or > 1000) throw new BadInputException($"--targets must be from 1 to 1000; got {Targets}.");
        if (Batch is < 1 or > 10_000) throw new BadInputException($"--batch must be from 1 to 10000; got {Batch}.");
    }
}

/// <summary>One attack at one budget: its robust accuracy over all images, its time, and the model evaluations it made per image.</summary>
/// <param name="Attack">The attack's name.</param>
/// <param name="RobustAccuracy">The share of images still classified correctly under this attack alone.</param>
/// <param name="Seconds">Wall-clock time of this attack over all images.</param>
/// <param name="QueriesPerImage">Model evaluations per attacked image (gradient attacks: forward-backward passes; Square, HopSkipJump: forward queries).</param>
internal sealed record BenchmarkAttackResult(string Attack, double RobustAccuracy, double Seconds, double QueriesPerImage);

/// <summary>The benchmark at one budget.</summary>
/// <param name="Eps">The budget.</param>
/// <param name="CleanAccuracy">Accuracy on the unperturbed images.</param>
/// <param name="Attacks">Each attack of the suite.</param>
/// <param name="WorstCase">The share of images that every attack of the suite left classified correctly.</param>
/// <param name="Robust">The images (indices into the benchmark's images) that withstood every attack.</param>
internal sealed record BenchmarkRow(double Eps, double CleanAccuracy, IReadOnlyList<BenchmarkAttackResult> Attacks, double WorstCase, IReadOnlyList<int> Robust);

/// <summary>A robustness report: the model, the data, the settings and one row per budget.</summary>
internal sealed record BenchmarkReport(string Model, string Data, int Images, BenchmarkSettings Settings, IReadOnlyList<BenchmarkRow> Rows);

/// <summary>
/// <c>reverie attack benchmark</c>: robust accuracy as AutoAttack reports it. Every attack of the
/// suite runs on every correctly classified image; an image counts as robust at a budget only if
/// no attack of the suite fooled it (the worst case per image). APGD-T tries the
/// <see cref="BenchmarkSettings.Targets"/> highest-scoring other classes in turn, each on the images
/// the earlier targets did not fool.
/// </summary>
internal static class AttackBenchmark
{
    /// <summary>
    /// Runs the suite over the first <paramref name="count"/> images of <paramref name="data"/>; progress counts
    /// (attack, budget, batch) units. Cancelled, the report holds the budgets finished before.
    /// </summary>
    public static BenchmarkReport Run(INetwork net, IImageDataset data, int count, BenchmarkSettings s, IProgress<(int Done, int Total, string Stage)>? progress = null, CancellationToken cancel = default)
    {
        s.Validate();
        count = Math.Min(count, data.Count);
        if (count < 1) throw new BadInputException($"'{data.Name}' has no images to attack.");
        var map = Datasets.ClassMap(net, data);
        int batches = (count + s.Batch - 1) / s.Batch, total = s.Eps.Count * s.Suite.Count * batches, done = 0;
        var labels = Enumerable.Range(0, count).Select(i => map[data.Label(i)]).ToArray();
        // Clean answers once: the images the model already gets wrong are never attacked.
        var clean = new bool[count];
        var ranked = new long[count][];
        for (int start = 0; start < count; start += s.Batch)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var idx = Enumerable.Range(start, Math.Min(s.Batch, count - start)).ToArray();
            var lp = Attack.LogProbabilities(net, Images(net, data, idx)).cpu();
            var order = lp.argsort(1, descending: true);
            for (int k = 0; k < idx.Length; k++)
            {
                var row = order[k].data<long>().ToArray();
                clean[idx[k]] = row[0] == labels[idx[k]];
                ranked[idx[k]] = row.Where(c => c != labels[idx[k]]).Take(s.Targets).ToArray();
            }
        }
        var rows = new List<BenchmarkRow>();
        foreach (var eps in s.Eps)
        {
            if (cancel.IsCancellationRequested) break;
            var robust = (bool[])clean.Clone();
            var results = new List<BenchmarkAttackResult>();
            foreach (var attack in s.Suite)
            {
                var survives = (bool[])clean.Clone();
                double queries = 0;
                int attacked = 0;
                var clock = Stopwatch.StartNew();
                for (int start = 0; start < count && !cancel.IsCancellationRequested; start += s.Batch)
                {
                    var idx = Enumerable.Range(start, Math.Min(s.Batch, count - start)).Where(i => clean[i]).ToArray();
                    if (idx.Length > 0)
                    {
                        using var scope = NewDisposeScope();
                        var fooled = Fooled(net, data, idx, labels, ranked, attack, eps, s, start, cancel, out double q);
                        for (int k = 0; k < idx.Length; k++) if (fooled[k]) survives[idx[k]] = false;
                        queries += q;
                        attacked += idx.Length;
                    }
                    progress?.Report((++done, total, $"{attack} eps {eps.ToString(CultureInfo.InvariantCulture)}"));
                }
                if (cancel.IsCancellationRequested) break; // an attack stopped part way: this budget's row would be wrong
                for (int i = 0; i < count; i++) robust[i] &= survives[i];
                results.Add(new BenchmarkAttackResult(attack, survives.Count(v => v) / (double)count, clock.Elapsed.TotalSeconds, attacked == 0 ? 0 : queries / attacked));
            }
            if (cancel.IsCancellationRequested) break;
            rows.Add(new BenchmarkRow(eps, clean.Count(v => v) / (double)count, results, robust.Count(v => v) / (double)count,
                Enumerable.Range(0, count).Where(i => robust[i]).ToArray()));
        }
        return new BenchmarkReport(net.Name, data.Name, count, s, rows);
    }

    static Tensor Images(INetwork net, IImageDataset data, int[] idx) => Datasets.FitTo(data.Images(idx), net.Input).to(net.Device);

    /// <summary>Attacks images <paramref name="idx"/> and says which the model now gets wrong; <paramref name="queries"/>: model evaluations in all.</summary>
    static bool[] Fooled(INetwork net, IImageDataset data, int[] idx, long[] labels, long[][] ranked, string attack, double eps, BenchmarkSettings s, int start, CancellationToken cancel, out double queries)
    {
        var x0 = Images(net, data, idx);
        var y = tensor(idx.Select(i => labels[i]).ToArray(), device: net.Device);
        int seed = s.Seed + start;
        Tensor LogP(Tensor x) => Attack.LogProbabilities(net, x);
        bool[] Wrong(Tensor adv)
        {
            using var noGrad = no_grad();
            return LogP(adv).argmax(1).ne(y).cpu().data<bool>().ToArray();
        }
        switch (attack)
        {
            case "apgd-ce" or "apgd-dlr":
                queries = (s.Steps + 1) * (double)idx.Length;
                return Wrong(Apgd.Run(LogP, x0, y, null, attack == "apgd-dlr", eps, s.Steps, seed, true, null, cancel, l2: s.L2).Image);
            case "apgd-t":
            {
                // Each target in turn, on the images no earlier target fooled.
                var fooled = new bool[idx.Length];
                queries = 0;
                int targets = ranked.Length == 0 ? 0 : idx.Min(i => ranked[i].Length);
                for (int r = 0; r < targets; r++)
                {
                    var open = Enumerable.Range(0, idx.Length).Where(k => !fooled[k]).ToArray();
                    if (open.Length == 0) break;
                    using var scope = NewDisposeScope();
                    var rows = tensor(open.Select(k => (long)k).ToArray(), device: net.Device);
                    var t = tensor(open.Select(k => ranked[idx[k]][r]).ToArray(), device: net.Device);
                    var adv = Apgd.Run(LogP, x0.index_select(0, rows), y.index_select(0, rows), t, true, eps, s.Steps, seed + r, true, null, cancel, l2: s.L2).Image;
                    using var noGrad = no_grad();
                    var wrong = LogP(adv).argmax(1).ne(y.index_select(0, rows)).cpu().data<bool>().ToArray();
                    for (int k = 0; k < open.Length; k++) if (wrong[k]) fooled[open[k]] = true;
                    queries += (s.Steps + 1) * (double)open.Length;
                }
                return fooled;
            }
            case "hopskipjump":
            {
                // Decision-based: reads only the top label; eps bounds the L2 change (it stops once within it).
                var r = HopSkipJump.Run(x => { using var noGrad = no_grad(); return LogP(x).argmax(1); }, x0, y,
                    new AttackOptions { Method = AttackMethod.HopSkipJump, Eps = eps, Steps = s.Queries, Seed = seed }, null, cancel);
                queries = r.Terms["queries"] * idx.Length;
                return eps == 0 ? Wrong(x0) : Wrong(r.Image);
            }
            case "square":
            {
                var r = SquareAttack.Run(x => { using var noGrad = no_grad(); return LogP(x); }, x0, y,
                    new AttackOptions { Method = AttackMethod.Square, Eps = eps, Steps = s.Queries, Seed = seed }, null, cancel);
                queries = r.Terms["queries"] * idx.Length;
                return Wrong(r.Image);
            }
            default:
            {
                var o = new AttackOptions
                {
                    Method = attack == "fgsm" ? AttackMethod.Fgsm : s.L2 ? AttackMethod.PgdL2 : AttackMethod.Pgd,
                    Eps = eps, Steps = s.Steps, Seed = seed,
                };
                queries = o.EffectiveSteps * (double)idx.Length;
                return eps == 0 && s.L2 ? Wrong(x0) : Wrong(Attack.Run(net, x0, y, o));
            }
        }
    }

    /// <summary>The report as JSON (camelCase, indented).</summary>
    public static string Json(BenchmarkReport report) => JsonSerializer.Serialize(report, Recipes.Recipe.JsonOptions);

    /// <summary>The report as Markdown: robust accuracy per attack and budget, the worst case, then time and queries.</summary>
    public static string Markdown(BenchmarkReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        var suite = r.Settings.Suite;
        var sb = new StringBuilder();
        sb.Append(inv, $"# Robustness of {r.Model} on {r.Data}\n\n");
        sb.Append(inv, $"{r.Images} images, {(r.Settings.L2 ? "L2" : "L∞")} budgets; {r.Settings.Steps} steps a gradient attack");
        if (suite.Contains("apgd-t")) sb.Append(inv, $", APGD-T over the top {r.Settings.Targets} other classes");
        if (suite.Contains("square")) sb.Append(inv, $", Square with {r.Settings.Queries} queries");
        if (suite.Contains("hopskipjump")) sb.Append(inv, $", HopSkipJump with {r.Settings.Queries} queries");
        sb.Append(inv, $"; seed {r.Settings.Seed}. An image is robust only if every attack fails on it (worst case).\n\n");
        sb.Append("| eps | clean | ").Append(string.Join(" | ", suite)).Append(" | worst case |\n");
        sb.Append("|---:|---:|").Append(string.Concat(suite.Select(_ => "---:|"))).Append("---:|\n");
        foreach (var row in r.Rows)
            sb.Append(inv, $"| {row.Eps} | {row.CleanAccuracy:P1} | ").Append(string.Join(" | ", row.Attacks.Select(a => a.RobustAccuracy.ToString("P1", inv))))
              .Append(inv, $" | **{row.WorstCase:P1}** |\n");
        sb.Append("\nTime (s) and model evaluations per attacked image:\n\n");
        sb.Append("| eps | ").Append(string.Join(" | ", suite)).Append(" |\n");
        sb.Append("|---:|").Append(string.Concat(suite.Select(_ => "---:|"))).Append('\n');
        foreach (var row in r.Rows)
            sb.Append(inv, $"| {row.Eps} | ").Append(string.Join(" | ", row.Attacks.Select(a => string.Create(inv, $"{a.Seconds:0.0} s, {a.QueriesPerImage:0}")))).Append(" |\n");
        return sb.ToString();
    }

    /// <summary>Robust accuracy against eps as a PNG: one line per attack, the worst case and the clean accuracy.</summary>
    public static byte[] Plot(BenchmarkReport r)
    {
        var eps = r.Rows.Select(row => row.Eps).ToList();
        var series = new List<Series>();
        for (int a = 0; a < r.Settings.Suite.Count; a++)
            series.Add(new Series(r.Settings.Suite[a], eps, r.Rows.Select(row => row.Attacks[a].RobustAccuracy).ToList(), Imaging.Plot.Palette[(a + 1) % Imaging.Plot.Palette.Length], Markers: true));
        series.Add(new Series("worst case", eps, r.Rows.Select(row => row.WorstCase).ToList(), Imaging.Plot.Palette[0], Markers: true));
        series.Add(new Series("clean", eps, r.Rows.Select(row => row.CleanAccuracy).ToList(), SkiaSharp.SKColors.Gray));
        var chart = new LineChart($"robust accuracy of {r.Model}", r.Settings.L2 ? "eps (L2 radius)" : "eps (L∞, 0..1 pixel units)", "accuracy", series) { YRange = (0, 1) };
        return Imaging.Plot.Render([chart], 1, 640, 440, title: $"{r.Data}, {r.Images} images");
    }
}

/// <summary>The options of <c>reverie attack benchmark</c>: a model, labelled images, budgets and a suite of attacks.</summary>
public sealed record AttackBenchmarkJobOptions : JobOptions
{
    /// <summary>Labelled images: fashion-mnist, textures or an ImageFolder (absolute in recipes); the test split where there is one.</summary>
    public required string Data { get; init; }
    /// <summary>Only these classes, comma-separated; null for all.</summary>
    public string? Classes { get; init; }
    /// <summary>How many images, drawn evenly from the classes by a seeded shuffle.</summary>
    public int Images { get; init; } = 1000;
    /// <summary>The budgets.</summary>
    public IReadOnlyList<double> Eps { get; init; } = [0.03];
    /// <summary><c>linf</c> or <c>l2</c>.</summary>
    public string Norm { get; init; } = "linf";
    /// <summary>The attacks, in order (AutoAttack's standard suite without FAB by default).</summary>
    public IReadOnlyList<string> Suite { get; init; } = ["apgd-ce", "apgd-t", "square"];
    /// <summary>Iterations of each gradient attack (APGD-T: per target).</summary>
    public int Steps { get; init; } = 100;
    /// <summary>The Square Attack's query budget per image.</summary>
    public int Queries { get; init; } = 5000;
    /// <summary>APGD-T's number of target classes.</summary>
    public int Targets { get; init; } = 9;
    /// <summary>Images attacked at once.</summary>
    public int Batch { get; init; } = 250;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Norm is not ("linf" or "l2")) throw new BadInputException($"--norm must be linf or l2; got '{BadInputException.Shown(Norm)}'.");
        if (Images is < 1 or > 1_000_000) throw new BadInputException($"--n must be from 1 to 1000000; got {Images}.");
        Settings().Validate();
    }

    /// <summary>The pixels of one input: Fashion-MNIST's 28x28, otherwise the usual 224x224 (the network's input size is known only once it is open).</summary>
    long InputPixels => Data == "fashion-mnist" ? 28 * 28 : 224 * 224;

    /// <inheritdoc/>
    internal override MemoryEstimate? EstimateMemory()
    {
        string model = Model ?? "fashion";
        long batch = Math.Min(Batch, Images);
        return new(MemoryEstimate.Sum(MemoryEstimate.Images((long)Images * InputPixels, 1), MemoryEstimate.Network(model, batch, InputPixels)),
            $"batches of {batch} images of {(InputPixels == 784 ? "28x28" : "224x224")} attacked through {MemoryEstimate.Shown(model)}");
    }

    internal BenchmarkSettings Settings() => new(Suite, Eps, Norm == "l2", Steps, Queries, Targets, Seed, Batch);
}

/// <summary>What a benchmark found, per budget: the clean accuracy, each attack's robust accuracy and the worst case.</summary>
internal sealed record BenchmarkSummary(string Model, string Data, int Images, IReadOnlyList<BenchmarkSummaryRow> Rows);

/// <summary>One budget of a <see cref="BenchmarkSummary"/>.</summary>
internal sealed record BenchmarkSummaryRow(double Eps, double CleanAccuracy, IReadOnlyDictionary<string, double> RobustAccuracy, double WorstCase);

/// <summary><c>reverie attack benchmark</c> as a job: the report as JSON (OUT.json), Markdown (OUT.md) and a plot of robust accuracy against eps (OUT.png).</summary>
internal sealed class AttackBenchmarkJob : Job<AttackBenchmarkJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "attack benchmark";

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(AttackBenchmarkJobOptions o, JobContext c)
    {
        if (!c.Output.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must end in .json (the Markdown and the plot go beside it); got '{BadInputException.Shown(c.Output)}'.");
        string md = Path.ChangeExtension(c.Output, ".md"), png = Path.ChangeExtension(c.Output, ".png");
        c.CheckOutput(md, sidecar: false);
        c.CheckOutput(png, sidecar: false);
        using var net = await c.OpenModelAsync(o.Model ?? "fashion");
        var set = Datasets.Open(o.Data, !Directory.Exists(o.Data), 0, net.Input.Height);
        if (o.Classes is { } only) set = Datasets.SelectClasses(set, only.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        set = Datasets.PerClass(set, (o.Images + set.Classes.Count - 1) / set.Classes.Count, o.Seed);
        var s = o.Settings();
        var report = await Task.Run(() => AttackBenchmark.Run(net, set, o.Images, s,
            new SyncProgress<(int Done, int Total, string Stage)>(p => c.Report(new JobEvent { Stage = p.Stage, Step = p.Done, Total = p.Total })), c.Cancel));
        bool interrupted = report.Rows.Count < s.Eps.Count;
        var summary = new BenchmarkSummary(report.Model, report.Data, report.Images, report.Rows.Select(r =>
            new BenchmarkSummaryRow(r.Eps, r.CleanAccuracy, r.Attacks.ToDictionary(a => a.Attack, a => a.RobustAccuracy), r.WorstCase)).ToList());
        c.SaveFile(System.Text.Encoding.UTF8.GetBytes(AttackBenchmark.Json(report)), c.Output, summary, report.Rows.Count, interrupted);
        if (c.NothingSaved) return new JobResult([], "interrupted before the first budget was done: nothing saved", true, summary);
        c.SaveExtraFile(System.Text.Encoding.UTF8.GetBytes(AttackBenchmark.Markdown(report)), md);
        c.SaveExtraPng(AttackBenchmark.Plot(report), png);
        var last = report.Rows[^1];
        string text = $"{c.Output}, {md}, {png}: {report.Model} on {report.Images} images of {report.Data}; at eps {last.Eps.ToString(CultureInfo.InvariantCulture)} clean {last.CleanAccuracy:P1}, worst case {last.WorstCase:P1}";
        return new JobResult([c.Output, md, png], interrupted ? $"interrupted after {report.Rows.Count} of {s.Eps.Count} budgets: saved {text}" : text, interrupted, summary);
    }
}
