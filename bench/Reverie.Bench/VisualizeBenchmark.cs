using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Objectives;
using Reverie.Models;
using Reverie.Visualization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// <c>reverie visualize</c>'s loop against the PyTorch reference (bench/scripts/pytorch_visualize.py):
/// the same ONNX-exported torchvision GoogLeNet, channel inception4c:97, Fourier parameterization,
/// Lucid's transforms, Adam, 224 px, 512 steps, 2 threads each.
/// </summary>
internal static class VisualizeBenchmark
{
    public static int Run(string[] args)
    {
        int reps = 1, steps = 512;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--steps") steps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        set_num_threads(2);
        string root = Paths.Root();
        string export = Paths.TorchvisionExport(root, "googlenet", 13);
        var spec = new InputSpec { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
        using var net = OnnxNetwork.Load(export, input: spec);
        using var netBf16 = OnnxNetwork.Load(export, input: spec);
        netBf16.To(CPU, ScalarType.BFloat16);
        var objective = ObjectiveLanguage.Parse(net, "inception4c:97");
        var mine = new List<double>();
        var mineBf16 = new List<double>();
        var theirs = new List<double>();
        double valueMine = 0, valueBf16 = 0, valueTheirs = 0;
        for (int r = 0; r < reps; r++)
        {
            var options = new VisualizeOptions { Steps = steps, Seed = r };
            var progress = new Last();
            var sw = Stopwatch.StartNew();
            using (var image = new FeatureVisualizer(net, objective, options).Run(progress)) mine.Add(sw.Elapsed.TotalSeconds);
            valueMine = progress.Value;
            sw.Restart();
            using (var image = new FeatureVisualizer(netBf16, objective, options with { BFloat16 = true }).Run(progress)) mineBf16.Add(sw.Elapsed.TotalSeconds);
            valueBf16 = progress.Value;
            var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_visualize.py"),
                "--export", export, "--layer", "inception4c", "--channel", "97", "--steps", steps.ToString(CultureInfo.InvariantCulture),
                "--seed", r.ToString(CultureInfo.InvariantCulture), "--threads", "2");
            if (code != 0) { Console.Error.WriteLine(text); return 1; }
            var json = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
            theirs.Add(json.GetProperty("seconds").GetDouble());
            valueTheirs = json.GetProperty("objective").GetDouble();
        }
        double m = mine.Order().ElementAt(reps / 2), mb = mineBf16.Order().ElementAt(reps / 2), t = theirs.Order().ElementAt(reps / 2);
        var table = new Table().Title($"visualize inception4c:97, 224 px, {steps} steps, Fourier + Lucid transforms + Adam, torchvision GoogLeNet, 2 threads, median of {reps}")
            .AddColumn("run").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("ms/step").RightAligned())
            .AddColumn(new TableColumn("ratio").RightAligned()).AddColumn(new TableColumn("final objective").RightAligned());
        void Row(string name, double s, double v) => table.AddRow(name, s.ToString("0.00", CultureInfo.InvariantCulture),
            (1000 * s / steps).ToString("0.0", CultureInfo.InvariantCulture), (s / t).ToString("0.00", CultureInfo.InvariantCulture), v.ToString("0.00", CultureInfo.InvariantCulture));
        Row("Reverie fp32", m, valueMine);
        Row("Reverie --precision bf16", mb, valueBf16);
        Row("PyTorch 1.13 reference", t, valueTheirs);
        AnsiConsole.Write(table);
        Console.WriteLine($"ratio Reverie fp32 / PyTorch fp32 = {m / t:0.00}; Reverie bf16 / PyTorch fp32 = {mb / t:0.00}");
        return 0;
    }

    sealed class Last : IProgress<Reverie.Optimization.OptimizationStep>
    {
        public double Value;
        public void Report(Reverie.Optimization.OptimizationStep p) => Value = p.Value;
    }
}
