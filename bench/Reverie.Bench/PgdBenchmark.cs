using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Adversarial;
using Reverie.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// PGD-40 (eps 0.1, step eps/40, random start) on the first 1,000 Fashion-MNIST test images against
/// the embedded <c>fashion</c> model, in Reverie and in Debian's PyTorch on the same weights
/// (bench/scripts/pytorch_pgd_fashion.py), batches of 250, 2 threads each.
/// </summary>
internal static class PgdBenchmark
{
    public static int Run(string[] args)
    {
        int images = 1000, reps = 1;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--images") images = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        set_num_threads(2);
        string root = Paths.Root();
        string checkpoint = Path.Combine(root, "models", "fashion.json");
        using var net = Checkpoint.Load(checkpoint);
        var test = Datasets.Open("fashion-mnist", test: true);
        var subset = new TensorDataset("first test images", test.Images(Enumerable.Range(0, images).ToList()),
            Enumerable.Range(0, images).Select(test.Label).ToList(), test.Classes);
        var options = new AttackOptions { Method = AttackMethod.Pgd, Eps = 0.1, Steps = 40 };
        var mine = new List<double>();
        var theirs = new List<double>();
        RobustnessResult r = null!;
        double theirAcc = 0;
        for (int k = 0; k < reps; k++)
        {
            var sw = Stopwatch.StartNew();
            r = Robustness.Evaluate(net, net, subset, PerturbationKind.WhiteBox, options);
            mine.Add(sw.Elapsed.TotalSeconds);
            var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_pgd_fashion.py"), checkpoint, "--images", images.ToString(CultureInfo.InvariantCulture), "--threads", "2");
            if (code != 0) throw new InvalidOperationException(text);
            var json = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
            theirs.Add(json.GetProperty("seconds").GetDouble());
            theirAcc = json.GetProperty("robust_accuracy").GetDouble();
        }
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        double a = Median(mine), b = Median(theirs);
        var table = new Table().Title($"PGD-40, eps 0.1, {images} Fashion-MNIST test images, fashion model, 2 threads, median of {reps}")
            .AddColumn("run").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("robust accuracy").RightAligned()).AddColumn(new TableColumn("ratio").RightAligned());
        table.AddRow("Reverie", a.ToString("0.00", CultureInfo.InvariantCulture), r.Accuracy.ToString("P2", CultureInfo.InvariantCulture), (a / b).ToString("0.00", CultureInfo.InvariantCulture));
        table.AddRow("PyTorch 1.13 (Debian)", b.ToString("0.00", CultureInfo.InvariantCulture), theirAcc.ToString("P2", CultureInfo.InvariantCulture), "1.00");
        AnsiConsole.Write(table);
        Console.WriteLine($"pgd ratio (Reverie / PyTorch): {a / b:0.00}");
        return 0;
    }
}
