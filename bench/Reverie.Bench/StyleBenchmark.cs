using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Reverie.Objectives;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Style;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// <c>reverie style</c> against the PyTorch reference (bench/scripts/pytorch_style.py): 512 px,
/// 300 L-BFGS iterations, torchvision GoogLeNet (Reverie on its ONNX export, PyTorch on the
/// model with the export's weights), 2 threads each. Then a fast stylize at 720x720: Reverie's
/// importer on an exported style net against ONNX Runtime on the same file.
/// </summary>
internal static class StyleBenchmark
{
    public static int Run(string[] args)
    {
        int steps = 300, size = 512;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--steps") steps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--size") size = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        set_num_threads(2);
        string root = Paths.Root();
        string content = Path.Combine(root, "examples", "coffee.png");
        string style = Path.Combine(root, "docs", "gallery", "chelsea-inception_4c-output.jpg");
        var sw = Stopwatch.StartNew();
        if (!args.Contains("--fast-only")) Optimization(root, content, style, steps, size);
        Fast(content, sw);
        return 0;
    }

    static void Optimization(string root, string content, string style, int steps, int size)
    {
        string export = Paths.TorchvisionExport(root, "googlenet", 13);
        var spec = new InputSpec { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
        using var net = OnnxNetwork.Load(export, input: spec);
        var options = new StyleOptions
        {
            Size = size, Steps = steps, ContentLayers = ["inception4a"], StyleLayers = ["conv1", "conv2", "inception3a", "inception3b", "inception4a"],
        };
        var transfer = new StyleTransfer(net, ImageIO.Load(content), [(ImageIO.Load(style), 1.0)], options);
        var sw = Stopwatch.StartNew();
        transfer.Run().Dispose();
        double mine = sw.Elapsed.TotalSeconds;
        var (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_style.py"), content, style, "--export", export,
            "--size", size.ToString(CultureInfo.InvariantCulture), "--steps", steps.ToString(CultureInfo.InvariantCulture), "--threads", "2");
        if (code != 0) throw new InvalidOperationException(text);
        var json = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
        double theirs = json.GetProperty("seconds").GetDouble();
        var table = new Table().Title($"style transfer {size} px, {steps} L-BFGS iterations, torchvision GoogLeNet, 2 threads")
            .AddColumn("run").AddColumn(new TableColumn("seconds").RightAligned()).AddColumn(new TableColumn("style loss first -> last").RightAligned());
        table.AddRow("Reverie", mine.ToString("0.00", CultureInfo.InvariantCulture), $"{transfer.History[0].Style:G4} -> {transfer.History[^1].Style:G4}");
        table.AddRow("PyTorch 1.13 reference", theirs.ToString("0.00", CultureInfo.InvariantCulture),
            $"{json.GetProperty("style_first").GetDouble():G4} -> {json.GetProperty("style_last").GetDouble():G4}");
        AnsiConsole.Write(table);
        Console.WriteLine($"ratio Reverie / PyTorch = {mine / theirs:0.00}");
    }

    static void Fast(string content, Stopwatch sw)
    {
        // Fast stylize at 720x720: one forward pass of an (untrained, same-shape) style net.
        random.manual_seed(0);
        using var tnet = new TransformerNet();
        string onnx = Path.Combine(Path.GetTempPath(), "reverie-bench-style.onnx");
        File.WriteAllBytes(onnx, tnet.ToOnnx());
        var photo = ImageIO.Resize(ImageIO.Load(content), 720, 720);
        List<double> Time(Stylizer stylizer)
        {
            stylizer.Apply(photo).Dispose(); // warm-up
            var times = new List<double>();
            for (int r = 0; r < 3; r++) { sw.Restart(); stylizer.Apply(photo).Dispose(); times.Add(sw.Elapsed.TotalSeconds); }
            return times;
        }
        List<double> reverie, importer;
        using (var stylizer = Stylizer.Load(onnx)) reverie = Time(stylizer);
        using (var stylizer = Stylizer.Load(onnx, onnxRuntime: false)) importer = Time(stylizer);
        using var opts = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
        using var session = new InferenceSession(onnx, opts);
        var input = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(photo.contiguous().data<float>().ToArray(), [1, 3, 720, 720]);
        session.Run([NamedOnnxValue.CreateFromTensor("image", input)]).Dispose();
        var ort = new List<double>();
        for (int r = 0; r < 3; r++) { sw.Restart(); session.Run([NamedOnnxValue.CreateFromTensor("image", input)]).Dispose(); ort.Add(sw.Elapsed.TotalSeconds); }
        double rm = reverie.Order().ElementAt(1), im = importer.Order().ElementAt(1), om = ort.Order().ElementAt(1);
        var ft = new Table().Title("fast stylize 720x720, one forward pass, 2 threads, median of 3").AddColumn("run").AddColumn(new TableColumn("seconds").RightAligned());
        ft.AddRow("Reverie stylize (ONNX Runtime inside, tensors in and out)", rm.ToString("0.000", CultureInfo.InvariantCulture));
        ft.AddRow("Reverie's importer (TorchSharp)", im.ToString("0.000", CultureInfo.InvariantCulture));
        ft.AddRow("ONNX Runtime 1.31 alone", om.ToString("0.000", CultureInfo.InvariantCulture));
        AnsiConsole.Write(ft);
        Console.WriteLine($"ratio Reverie stylize / ONNX Runtime = {rm / om:0.00}; importer / ONNX Runtime = {im / om:0.00}");
        File.Delete(onnx);
    }
}
