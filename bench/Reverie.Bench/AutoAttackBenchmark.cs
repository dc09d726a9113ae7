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
/// Then, Reverie alone on the same images, the two minimal-L2 attacks the issue compares by speed: DeepFool (50 steps)
/// and Carlini–Wagner (its defaults, 9 searches of 100 Adam steps), each with its success rate and median L2.
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

        bool[] clean;
        using (no_grad()) clean = Attack.LogProbabilities(net, x).argmax(1).eq(y).data<bool>().ToArray();
        // Robust accuracy over batches of 250, the seconds the attack took (the robust check outside the clock), the
        // success rate on the images the model got right, and the median L2 change of those successes.
        (double Seconds, double Accuracy, double Success, double MedianL2) Measure(Func<Tensor, Tensor, Tensor> attack)
        {
            double seconds = 0;
            var right = new List<bool>();
            var l2 = new List<float>();
            for (int s = 0; s < images; s += 250)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(250, images - s);
                var (x0, y0) = (x.narrow(0, s, n), y.narrow(0, s, n));
                var sw = Stopwatch.StartNew();
                var adv = attack(x0, y0);
                seconds += sw.Elapsed.TotalSeconds;
                using var noGrad = no_grad();
                right.AddRange(Attack.LogProbabilities(net, adv).argmax(1).eq(y0).data<bool>().ToArray());
                l2.AddRange((adv - x0).flatten(1).norm(1).data<float>().ToArray());
            }
            var fooled = Enumerable.Range(0, images).Where(i => clean[i] && !right[i]).ToList();
            var sorted = fooled.Select(i => l2[i]).Order().ToList();
            return (seconds, right.Count(r => r) / (double)images, fooled.Count / (double)Math.Max(1, clean.Count(c => c)),
                sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2]);
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
        void Row(string name, (double Seconds, double Accuracy, double Success, double MedianL2) mine, string key)
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
        Console.WriteLine($"clean accuracy {clean.Count(c => c) / (double)images:P1}; Square fools {square.Success:P1} of the images the model gets right within {queries} queries");

        var deepFool = Measure((x0, y0) => Attack.Run(net, x0, y0, new AttackOptions { Method = AttackMethod.DeepFool, Eps = 0, Steps = 50 }));
        var cw = Measure((x0, y0) => Attack.Run(net, x0, y0, new AttackOptions { Method = AttackMethod.CarliniWagner, Steps = 100 }));
        var minimal = new Table().Title("minimal L2 changes, Reverie alone, on the images the model gets right")
            .AddColumn("attack").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("success").RightAligned()).AddColumn(new TableColumn("median L2").RightAligned());
        foreach (var (name, r) in new[] { ("DeepFool, 50 steps", deepFool), ("C&W, 9 searches of 100 steps", cw) })
            minimal.AddRow(name, r.Seconds.ToString("0.00", CultureInfo.InvariantCulture), r.Success.ToString("P1", CultureInfo.InvariantCulture), r.MedianL2.ToString("0.000", CultureInfo.InvariantCulture));
        AnsiConsole.Write(minimal);
        Console.WriteLine($"C&W / DeepFool time: {cw.Seconds / deepFool.Seconds:0.0}x; DeepFool's median L2 / C&W's: {deepFool.MedianL2 / cw.MedianL2:0.00}");
        return 0;
    }
}
