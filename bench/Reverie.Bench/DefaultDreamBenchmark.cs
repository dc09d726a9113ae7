using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// The README's main job, <c>reverie dream examples/coffee.png</c> at the defaults (600x400 whole,
/// 4 octaves x 10 steps, inception_4c/output), on the network users dream with: Caffe's BVLC
/// GoogLeNet with its LRN layers. Reverie in both memory layouts against a PyTorch port of the same
/// graph and loop (bench/scripts/pytorch_deepdream.py --bvlc), same jitter offsets, 2 threads each,
/// alternating A B A B. First a float64 check that the port and Reverie compute the same dream.
/// </summary>
internal static class DefaultDreamBenchmark
{
    public static int Run(string[] args)
    {
        int reps = 5;
        for (int i = 0; i < args.Length - 1; i++) if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        set_num_threads(2);
        string root = Paths.Root();
        string tmp = Directory.CreateTempSubdirectory("reverie-bench-").FullName;
        string model = Paths.BvlcGoogLeNet(root);
        string input = Path.Combine(root, "examples", "coffee.png");
        var spec = Paths.BvlcSpec;
        using var photo = ImageIO.Load(input);
        using var net = OnnxNetwork.Load(model, "googlenet", spec);
        string layer = net.ResolveLayer("inception_4c/output");
        string offsets = Path.Combine(tmp, "offsets.json");

        double RunReverie(INetwork n, DreamOptions o, Tensor x, out Tensor result)
        {
            var dream = new DeepDream(n, new LayerL2(layer), o);
            var sw = Stopwatch.StartNew();
            result = dream.Run(x);
            double s = sw.Elapsed.TotalSeconds;
            File.WriteAllText(offsets, JsonSerializer.Serialize(dream.Jitter.Drawn.Select(d => new[] { d.Dx, d.Dy })));
            return s;
        }
        (double Seconds, Tensor Result) RunPyTorch(string image, long h, long w, string dtype, params string[] extra)
        {
            string raw = Path.Combine(tmp, "ref.f32");
            var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_deepdream.py"),
                [image, raw, offsets, "--bvlc", model, "--threads", "2", "--dtype", dtype, .. extra]);
            if (code != 0) throw new InvalidOperationException(text);
            var values = new float[3 * h * w];
            Buffer.BlockCopy(File.ReadAllBytes(raw), 0, values, 0, values.Length * 4);
            return (JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement.GetProperty("seconds").GetDouble(), tensor(values).reshape(1, 3, h, w));
        }

        // 1. Same computation: float64, 2 octaves x 3 steps at 224 px, both sides.
        string small = Path.Combine(tmp, "coffee224.png");
        using (var s224 = ImageIO.Resize(photo, 224, 224)) ImageIO.Save(s224, small);
        using (var net64 = OnnxNetwork.Load(model, "googlenet", spec))
        {
            net64.To(CPU, ScalarType.Float64);
            using var x64 = ImageIO.Load(small).to(ScalarType.Float64);
            RunReverie(net64, new DreamOptions { Octaves = 2, Steps = 3 }, x64, out var mine64);
            var (_, ref64) = RunPyTorch(small, 224, 224, "float64", "--octaves", "2", "--steps", "3");
            Console.WriteLine($"float64 check, 224 px, 2 octaves x 3 steps: PSNR Reverie vs PyTorch port {Filters.Psnr(mine64.to(ScalarType.Float32), ref64):0.0} dB (identical after rounding to float32 = Infinity)");
        }

        // 2. The default dream, alternating.
        var contiguous = new List<double>();
        var channelsLast = new List<double>();
        var pytorch = new List<double>();
        var psnr = new List<double>();
        var defaults = new DreamOptions();
        for (int r = 0; r < reps; r++)
        {
            net.ChannelsLast = false;
            contiguous.Add(RunReverie(net, defaults with { Seed = r }, photo, out var a));
            net.ChannelsLast = true;
            channelsLast.Add(RunReverie(net, defaults with { Seed = r }, photo, out var b));
            var (t, c) = RunPyTorch(input, photo.shape[2], photo.shape[3], "float32");
            pytorch.Add(t);
            psnr.Add(Filters.Psnr(b, c));
            a.Dispose(); b.Dispose(); c.Dispose();
        }
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        string F2(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
        string Range(List<double> v) => $"{F2(v.Min())} – {F2(v.Max())}";
        double p = Median(pytorch);
        var table = new Table().Title($"reverie dream examples/coffee.png at the defaults (600x400 whole, 4 octaves x 10 steps), BVLC GoogLeNet to inception_4c/output, 2 threads, {reps} alternating runs")
            .AddColumn("run").AddColumn(new TableColumn("median s").RightAligned()).AddColumn(new TableColumn("range").RightAligned()).AddColumn(new TableColumn("ratio").RightAligned());
        table.AddRow("Reverie, contiguous (NCHW)", F2(Median(contiguous)), Range(contiguous), F2(Median(contiguous) / p));
        table.AddRow("Reverie, channels-last (NHWC)", F2(Median(channelsLast)), Range(channelsLast), F2(Median(channelsLast) / p));
        table.AddRow("PyTorch 1.13 port, same graph and offsets", F2(p), Range(pytorch), "1.00");
        AnsiConsole.Write(table);
        Console.WriteLine($"fp32 dreams, Reverie channels-last vs PyTorch: PSNR {psnr.Average():0.0} dB (chaotic: PyTorch against itself with one value nudged by 1/255 ends ~27 dB apart)");
        Directory.Delete(tmp, true);
        return 0;
    }
}
