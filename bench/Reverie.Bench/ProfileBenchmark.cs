using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// Where a default dream's time goes: <c>reverie dream examples/coffee.png</c>'s engine at the
/// defaults (4 octaves × 10 steps, whole image) on BVLC GoogLeNet, against the network part alone
/// (forward to inception_4c and the input gradient, at each octave's size, as many times as the
/// dream does), and the convolution throughput as a share of the machine's peak. With
/// <c>--torchvision</c>, the same on the <c>dream</c> benchmark's case instead: torchvision's
/// GoogLeNet (its ONNX export) to inception4c on the photo resized to 512×512.
/// </summary>
internal static class ProfileBenchmark
{
    public static int Run(string[] args)
    {
        int reps = 3;
        double peak = 380; // GFLOP/s: 2 cores × AVX-512 FMA × 2 units at ~3 GHz, as the engine issue estimates
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--peak") peak = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        bool torchvision = args.Contains("--torchvision");
        set_num_threads(2);
        string root = Paths.Root();
        string model = torchvision ? Paths.TorchvisionExport(root, "googlenet", 13) : Paths.BvlcGoogLeNet(root);
        var spec = torchvision ? new InputSpec { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] } : Paths.BvlcSpec;
        using var net = OnnxNetwork.Load(model, torchvision ? null : "googlenet", spec);
        using var loaded = ImageIO.Load(Path.Combine(root, "examples", "coffee.png"));
        using var photo = torchvision ? ImageIO.Resize(loaded, 512, 512) : loaded.alias();
        var options = new DreamOptions();
        string layer = net.ResolveLayer(torchvision ? "inception4c" : "inception_4c/output");
        string name = torchvision ? "torchvision GoogLeNet to inception4c" : "BVLC GoogLeNet to inception_4c";
        var objective = new LayerL2(layer);
        var sizes = OctavePyramid.Sizes((int)photo.shape[2], (int)photo.shape[3], options.Octaves, options.OctaveScale);

        // Warm up both paths once.
        new DeepDream(net, objective, options with { Octaves = 1, Steps = 2 }).Run(photo).Dispose();
        var dream = new List<double>();
        var network = new List<double>();
        double NetworkPart()
        {
            var sw = Stopwatch.StartNew();
            foreach (var (h, w) in sizes)
            {
                using var x = rand(1, 3, h, w);
                for (int s = 0; s < options.Steps; s++)
                {
                    using var scope = NewDisposeScope();
                    var xi = x.detach().requires_grad_(true);
                    objective.Evaluate(net.Forward(xi, [layer])).backward();
                    xi.grad!.sum().item<float>(); // wait for the gradient
                }
            }
            return sw.Elapsed.TotalSeconds;
        }
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            using (new DeepDream(net, objective, options with { Seed = r }).Run(photo)) { }
            dream.Add(sw.Elapsed.TotalSeconds);
            network.Add(NetworkPart());
        }
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        double d = Median(dream), n = Median(network);
        // Convolution FLOPs of the forward to inception_4c at each octave's size (bench/scripts/conv_flops.py); the input gradient costs as much again.
        var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "conv_flops.py"), [model, "concat:5", .. sizes.Select(s => $"{s.H}x{s.W}")]);
        double gflop = double.NaN;
        if (code == 0)
            gflop = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement.EnumerateObject().Sum(p => p.Value.GetDouble()) * options.Steps * 2 / 1e9;
        var table = new Table().Title($"coffee.png {photo.shape[3]}x{photo.shape[2]}, defaults (4 octaves x 10 steps, whole image), {name}, 2 threads, median of {reps}")
            .AddColumn("part").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
        table.AddRow("whole dream (engine)", d.ToString("0.00", CultureInfo.InvariantCulture), "100%");
        table.AddRow("network: forward + input gradient", n.ToString("0.00", CultureInfo.InvariantCulture), (n / d).ToString("P0", CultureInfo.InvariantCulture));
        table.AddRow("the rest: pyramid, rolls, steps, clipping", (d - n).ToString("0.00", CultureInfo.InvariantCulture), ((d - n) / d).ToString("P0", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        Console.WriteLine($"convolution: {gflop:0.0} GFLOP in the dream; {gflop / d:0.0} GFLOP/s over the dream = {gflop / d / peak:P0} of a {peak:0} GFLOP/s peak; {gflop / n:0.0} GFLOP/s in the network part");
        // The forward pass by operator, at each octave's size (the input gradient is not split).
        net.Graph.ForwardSeconds = new();
        using (no_grad())
            foreach (var (h, w) in sizes)
                for (int s = 0; s < options.Steps; s++)
                {
                    using var scope = NewDisposeScope();
                    net.Forward(rand(1, 3, h, w), [layer]);
                }
        var ops = net.Graph.ForwardSeconds;
        net.Graph.ForwardSeconds = null;
        double total = ops.Values.Sum();
        var opTable = new Table().Title($"the dream's forward passes by operator ({total:0.00} s; the input gradient costs about as much again)")
            .AddColumn("operator").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
        foreach (var (op, sec) in ops.OrderByDescending(kv => kv.Value))
            opTable.AddRow(op, sec.ToString("0.000", CultureInfo.InvariantCulture), (sec / total).ToString("P0", CultureInfo.InvariantCulture));
        AnsiConsole.Write(opTable);
        Console.WriteLine($"layout: {(net.ChannelsLast ? "channels-last" : "contiguous")} ($REVERIE_CHANNELS_LAST=0|1 overrides)");

        // The ceiling: libtorch's best case on this machine, one large 3x3 convolution (256 -> 256
        // channels at 56x56, 3.7 GFLOP forward), forward plus input gradient, in both layouts.
        foreach (bool channelsLast in new[] { false, true })
        {
            using var scope = NewDisposeScope();
            var w = randn(256, 256, 3, 3) * S(0.02);
            var x0 = rand(1, 256, 56, 56);
            if (channelsLast) { x0 = x0.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2); w = w.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2); }
            double flop = 2.0 * 256 * 256 * 9 * 56 * 56 * 2;
            var times = new List<double>();
            for (int r = 0; r < 6; r++)
            {
                using var inner = NewDisposeScope();
                var xi = x0.detach().requires_grad_(true);
                var sw = Stopwatch.StartNew();
                nn.functional.conv2d(xi, w, padding: [1, 1]).sum().backward();
                xi.grad!.sum().item<float>();
                if (r > 0) times.Add(sw.Elapsed.TotalSeconds);
            }
            double t = Median(times);
            Console.WriteLine($"ceiling, one 3x3 convolution 256->256 at 56x56, forward + input gradient, {(channelsLast ? "channels-last" : "contiguous")}: {flop / t / 1e9:0.0} GFLOP/s = {flop / t / 1e9 / peak:P0} of peak");
        }
        return 0;
    }
}
