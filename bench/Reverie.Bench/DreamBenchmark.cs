using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Reverie.Objectives;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// <c>reverie dream</c>'s engine against the PyTorch reference (bench/scripts/pytorch_deepdream.py)
/// on the same ONNX-exported torchvision GoogLeNet, 512x512, 4 octaves x 10 steps, 2 threads each,
/// with the same jitter offsets; then Reverie's time per megapixel from 0.25 to 16 MP with tiles.
/// </summary>
internal static class DreamBenchmark
{
    public static int Run(string[] args)
    {
        int reps = 3;
        bool scaling = !args.Contains("--no-scaling");
        for (int i = 0; i < args.Length - 1; i++) if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        set_num_threads(2);
        string root = Paths.Root();
        string tmp = Directory.CreateTempSubdirectory("reverie-bench-").FullName;
        string export = Paths.TorchvisionExport(root, "googlenet", 13);
        using var photo = ImageIO.Load(Path.Combine(root, "examples", "coffee.png"));
        string input = Path.Combine(tmp, "in512.png");
        ImageIO.Save(ImageIO.Resize(photo, 512, 512), input);
        var spec = new InputSpec { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
        using var net = OnnxNetwork.Load(export, input: spec);
        using var netBf16 = OnnxNetwork.Load(export, input: spec);
        netBf16.To(CPU, ScalarType.BFloat16);
        var options = new DreamOptions { Tile = 0 };
        var mine = new List<double>();
        var mineBf16 = new List<double>();
        var psnrBf16 = new List<double>();
        var theirs = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            var x = ImageIO.Load(input);
            var dream = new DeepDream(net, new LayerL2(net.ResolveLayer("inception4c")), options with { Seed = r });
            var sw = Stopwatch.StartNew();
            using var result = dream.Run(x);
            mine.Add(sw.Elapsed.TotalSeconds);
            sw.Restart();
            using var resultBf16 = new DeepDream(netBf16, new LayerL2(net.ResolveLayer("inception4c")), options with { Seed = r, BFloat16 = true }).Run(x);
            mineBf16.Add(sw.Elapsed.TotalSeconds);
            psnrBf16.Add(Filters.Psnr(result, resultBf16));
            string offsets = Path.Combine(tmp, "offsets.json");
            File.WriteAllText(offsets, JsonSerializer.Serialize(dream.Jitter.Drawn.Select(o => new[] { o.Dx, o.Dy })));
            var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_deepdream.py"), input, Path.Combine(tmp, "ref.f32"), offsets,
                "--export", export, "--threads", "2");
            if (code != 0) { Console.Error.WriteLine(text); return 1; }
            theirs.Add(JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement.GetProperty("seconds").GetDouble());
        }
        double m = mine.Order().ElementAt(reps / 2), t = theirs.Order().ElementAt(reps / 2), mb = mineBf16.Order().ElementAt(reps / 2);
        var table = new Table().Title($"DeepDream 512x512, 4 octaves x 10 steps, torchvision GoogLeNet to inception4c, 2 threads, median of {reps}")
            .AddColumn("run").AddColumn(new TableColumn("seconds").RightAligned());
        table.AddRow("Reverie fp32", m.ToString("0.00", CultureInfo.InvariantCulture));
        table.AddRow("Reverie --precision bf16", mb.ToString("0.00", CultureInfo.InvariantCulture));
        table.AddRow("PyTorch 1.13 reference", t.ToString("0.00", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        Console.WriteLine($"ratio Reverie fp32 / PyTorch fp32 = {m / t:0.00}; Reverie bf16 / PyTorch fp32 = {mb / t:0.00}; " +
                          $"bf16 dream vs fp32 dream PSNR {psnrBf16.Average():0.0} dB (DeepDream is chaotic: fp32 against itself with one input value nudged by 1/255 gives ~27 dB)");

        if (scaling)
        {
            var bvlc = OnnxNetwork.Load(Paths.BvlcGoogLeNet(root), "googlenet", Paths.BvlcSpec);
            var st = new Table().Title("time per megapixel: bvlc_googlenet, inception_4c/output, 1 octave x 2 steps, tile 512")
                .AddColumn("size").AddColumn(new TableColumn("MP").RightAligned()).AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("s/MP").RightAligned());
            foreach (int side in new[] { 512, 1024, 2048, 4096 })
            {
                using var scope = NewDisposeScope();
                var img = ImageIO.Resize(photo, side, side);
                var dream = new DeepDream(bvlc, new LayerL2(bvlc.ResolveLayer("inception_4c/output")), new DreamOptions { Octaves = 1, Steps = 2, Tile = 512 });
                var sw = Stopwatch.StartNew();
                dream.Run(img);
                double s = sw.Elapsed.TotalSeconds, mp = side * (double)side / 1e6;
                st.AddRow($"{side}x{side}", mp.ToString("0.00", CultureInfo.InvariantCulture), s.ToString("0.00", CultureInfo.InvariantCulture), (s / mp).ToString("0.00", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(st);
        }
        Directory.Delete(tmp, true);
        return 0;
    }
}

/// <summary>Locations and helpers shared by the benchmarks.</summary>
internal static class Paths
{
    public static string Root()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "Reverie.slnx"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("run from the repository");
    }

    /// <summary>Caffe's BVLC GoogLeNet from ../shared/models, and the input spec of Reverie's registry entry for it.</summary>
    public static string BvlcGoogLeNet(string root) => Path.Combine(root, "..", "shared", "models", "bvlc_googlenet.onnx");
    public static readonly InputSpec BvlcSpec = new() { Channels = ChannelOrder.Bgr, Scale = 255, Mean = [123.68f, 116.779f, 103.939f] };

    public static string TorchvisionExport(string root, string name, int opset)
    {
        string dir = Path.Combine(Path.GetTempPath(), "reverie-torchvision-exports-v2");
        var (code, text) = Python(Path.Combine(root, "tests", "scripts", "export_torchvision.py"), dir, $"{name}:{opset}");
        if (code != 0) throw new InvalidOperationException(text);
        return Path.Combine(dir, $"{name}_op{opset}.onnx");
    }

    public static (int, string) Python(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "2";
        using var p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd(), e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, p.ExitCode == 0 ? o : o + e);
    }
}
