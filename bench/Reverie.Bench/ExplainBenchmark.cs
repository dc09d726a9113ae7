using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Explaining;
using Reverie.Imaging;
using Reverie.Models;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// <c>reverie explain</c>'s Grad-CAM and integrated gradients (64 steps, batched) on one 224 px image
/// of BVLC GoogLeNet, against the same methods written in PyTorch on the same graph
/// (bench/scripts/pytorch_explain.py), 2 threads each, medians after a warm-up.
/// </summary>
internal static class ExplainBenchmark
{
    public static int Run(string[] args)
    {
        int reps = 3;
        for (int i = 0; i < args.Length - 1; i++) if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        set_num_threads(2);
        string root = Paths.Root();
        string tmp = Directory.CreateTempSubdirectory("reverie-bench-").FullName;
        using var net = OnnxNetwork.Load(Paths.BvlcGoogLeNet(root), "googlenet", Paths.BvlcSpec, Reverie.Models.Registry.Labels.ImageNet);
        using var photo = ImageIO.Load(Path.Combine(root, "examples", "coffee.png"));
        var x = ImageIO.Resize(photo, 224, 224);
        int cls = Classifier.Classify(net, x, 1)[0].Index;
        string layer = net.ResolveLayer("inception_5b/output");

        double Median(Action work)
        {
            using (NewDisposeScope()) work(); // warm-up
            var samples = new List<double>();
            for (int r = 0; r < reps; r++)
            {
                using var scope = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                work();
                samples.Add(sw.Elapsed.TotalSeconds);
            }
            return samples.Order().ElementAt(samples.Count / 2);
        }
        double gradcam = Median(() => new GradCam(layer).Explain(net, x, cls));
        double ig = Median(() => new IntegratedGradients(64, Baseline.Black, 0).Explain(net, x, cls));

        string image = Path.Combine(tmp, "x.f32");
        File.WriteAllBytes(image, x.contiguous().data<float>().ToArray().SelectMany(BitConverter.GetBytes).ToArray());
        var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_explain.py"), Paths.BvlcGoogLeNet(root), image,
            cls.ToString(CultureInfo.InvariantCulture), layer, "--reps", reps.ToString(CultureInfo.InvariantCulture));
        if (code != 0) { Console.Error.WriteLine(text); return 1; }
        var theirs = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
        double tg = theirs.GetProperty("gradcam").GetDouble(), ti = theirs.GetProperty("ig").GetDouble();
        string F3(double v) => v.ToString("0.000", CultureInfo.InvariantCulture);
        var table = new Table().Title($"explain on coffee.png at 224 px, BVLC GoogLeNet, 2 threads, median of {reps}")
            .AddColumn("method").AddColumn(new TableColumn("Reverie s").RightAligned()).AddColumn(new TableColumn("PyTorch 1.13 s").RightAligned()).AddColumn(new TableColumn("ratio").RightAligned());
        table.AddRow("Grad-CAM at inception_5b/output", F3(gradcam), F3(tg), (gradcam / tg).ToString("0.00", CultureInfo.InvariantCulture));
        table.AddRow("integrated gradients, 64 steps (Reverie: batches of 4, + 17 probe forwards; PyTorch: batches of 16)", F3(ig), F3(ti), (ig / ti).ToString("0.00", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        Directory.Delete(tmp, true);
        return 0;
    }
}
