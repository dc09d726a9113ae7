using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// One Fashion-MNIST epoch of the <c>fashion</c> architecture (60 000 images, batch 128, AdamW with
/// a cosine schedule, no augmentation, no validation) in Reverie's trainer against the same model
/// and loop in Debian's PyTorch (bench/scripts/pytorch_train_fashion.py), 2 threads each.
/// </summary>
internal static class TrainBenchmark
{
    public static int Run(string[] args)
    {
        int limit = 0, reps = 1;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--limit") limit = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        set_num_threads(2);
        string root = Paths.Root();
        IImageDataset data = Datasets.Open("fashion-mnist", test: false);
        if (limit > 0) data = Datasets.PerClass(data, limit / 10, 0);
        var mine = new List<double>();
        var theirs = new List<double>();
        double myAcc = 0, theirAcc = 0;
        for (int r = 0; r < reps; r++)
        {
            var spec = Architectures.Get("fashion", 10);
            using (var net = new ConvNet("fashion", spec, Architectures.InputFor(spec, "fashion"), data.Classes))
            {
                var sw = Stopwatch.StartNew();
                var state = new Trainer(net, new TrainOptions { Epochs = 1, BatchSize = 128 }).Run(data, null);
                mine.Add(sw.Elapsed.TotalSeconds);
                myAcc = state.History[0].TrainAccuracy;
            }
            var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_train_fashion.py"), "--threads", "2",
                "--limit", (limit > 0 ? data.Count : 0).ToString(CultureInfo.InvariantCulture));
            if (code != 0) throw new InvalidOperationException(text);
            var json = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
            theirs.Add(json.GetProperty("seconds").GetDouble());
            theirAcc = json.GetProperty("accuracy").GetDouble();
        }
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        double a = Median(mine), b = Median(theirs);
        var table = new Table().Title($"one Fashion-MNIST epoch ({data.Count} images), fashion architecture, batch 128, 2 threads, median of {reps}")
            .AddColumn("run").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("train accuracy").RightAligned()).AddColumn(new TableColumn("ratio").RightAligned());
        table.AddRow("Reverie", a.ToString("0.00", CultureInfo.InvariantCulture), myAcc.ToString("P2", CultureInfo.InvariantCulture), (a / b).ToString("0.00", CultureInfo.InvariantCulture));
        table.AddRow("PyTorch 1.13 (Debian)", b.ToString("0.00", CultureInfo.InvariantCulture), theirAcc.ToString("P2", CultureInfo.InvariantCulture), "1.00");
        AnsiConsole.Write(table);
        Console.WriteLine($"train ratio (Reverie / PyTorch): {a / b:0.00}");
        return 0;
    }
}
