using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Adversarial;
using Reverie.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// APGD-CE (100 steps) and the Square Attack (1,000 queries), L∞ eps 0.1, on the first 1,000
/// Fashion-MNIST test images against the embedded <c>fashion</c> model, in Reverie and in Debian's
/// PyTorch (bench/scripts/pytorch_apgd_square_fashion.py, written from the same papers with the same
/// choices) on the same weights, batches of 250, 2 threads each: seconds and robust accuracy side by side.
/// </summary>
internal static class AutoAttackBenchmark
{
    public static int Run(string[] args)
    {
        int images = 1000, steps = 100, queries = 1000;
        double eps = 0.1;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--images") images = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--queries") queries = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--eps") eps = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        set_num_threads(2);
        string root = Paths.Root();
        string checkpoint = Path.Combine(root, "models", "fashion.json");
        using var net = Checkpoint.Load(checkpoint);
        var test = Datasets.Open("fashion-mnist", test: true);
        var x = test.Images(Enumerable.Range(0, images).ToList());
        var y = tensor(Enumerable.Range(0, images).Select(i => (long)test.Label(i)).ToArray());

        // Robust accuracy over batches of 250, and the seconds the attack took.
        (double Seconds, double Accuracy) Measure(Func<Tensor, Tensor, Tensor> attack)
        {
            var sw = Stopwatch.StartNew();
            long correct = 0;
            for (int s = 0; s < images; s += 250)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(250, images - s);
                var (x0, y0) = (x.narrow(0, s, n), y.narrow(0, s, n));
                var adv = attack(x0, y0);
                using var noGrad = no_grad();
                correct += Attack.LogProbabilities(net, adv).argmax(1).eq(y0).sum().item<long>();
            }
            return (sw.Elapsed.TotalSeconds, correct / (double)images);
        }
        Tensor LogP(Tensor t) => Attack.LogProbabilities(net, t);
        var apgd = Measure((x0, y0) => Apgd.Run(LogP, x0, y0, null, false, eps, steps, 0, true, null, default).Image);
        var square = Measure((x0, y0) => SquareAttack.Run(t => { using var ng = no_grad(); return LogP(t); }, x0, y0,
            new AttackOptions { Method = AttackMethod.Square, Eps = eps, Steps = queries }, null, default).Image);

        var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_apgd_square_fashion.py"), checkpoint,
            "--images", images.ToString(CultureInfo.InvariantCulture), "--eps", eps.ToString(CultureInfo.InvariantCulture),
            "--steps", steps.ToString(CultureInfo.InvariantCulture), "--queries", queries.ToString(CultureInfo.InvariantCulture), "--threads", "2");
        if (code != 0) throw new InvalidOperationException(text);
        var json = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
        double Get(string name) => json.GetProperty(name).GetDouble();

        var table = new Table().Title($"eps {eps}, {images} Fashion-MNIST test images, fashion model, 2 threads")
            .AddColumn("attack").AddColumn(new TableColumn("Reverie s").RightAligned()).AddColumn(new TableColumn("PyTorch s").RightAligned())
            .AddColumn(new TableColumn("ratio").RightAligned()).AddColumn(new TableColumn("Reverie robust").RightAligned()).AddColumn(new TableColumn("PyTorch robust").RightAligned());
        void Row(string name, (double Seconds, double Accuracy) mine, string key)
        {
            double theirs = Get(key + "_seconds");
            table.AddRow(name, mine.Seconds.ToString("0.00", CultureInfo.InvariantCulture), theirs.ToString("0.00", CultureInfo.InvariantCulture),
                (mine.Seconds / theirs).ToString("0.00", CultureInfo.InvariantCulture), mine.Accuracy.ToString("P1", CultureInfo.InvariantCulture),
                Get(key + "_robust_accuracy").ToString("P1", CultureInfo.InvariantCulture));
            Console.WriteLine($"{key} ratio (Reverie / PyTorch): {mine.Seconds / theirs:0.00}");
        }
        Row($"APGD-CE, {steps} steps", apgd, "apgd");
        Row($"Square, {queries} queries", square, "square");
        AnsiConsole.Write(table);
        return 0;
    }
}
