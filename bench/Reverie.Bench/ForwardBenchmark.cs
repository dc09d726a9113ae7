using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Reverie.Models;
using Reverie.Models.Onnx;
using Reverie.Models.Onnx.Proto;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// Forward plus input gradient of GoogLeNet up to inception_4c, timed side by side with its peers
/// in one run: ONNX Runtime's forward alone on bvlc_googlenet, and Debian's PyTorch running
/// torchvision's GoogLeNet against Reverie running the ONNX export of that same model.
/// </summary>
internal static class ForwardBenchmark
{
    static double Median(Func<double> once, int reps)
    {
        once();
        var t = Enumerable.Range(0, reps).Select(_ => once()).Order().ToList();
        return t[t.Count / 2];
    }

    static double ReverieStep(INetwork net, string layer, int size)
    {
        using var scope = NewDisposeScope();
        var x = rand(1, 3, size, size).requires_grad_(true);
        var sw = Stopwatch.StartNew();
        var act = net.Forward(x, [layer]).Values.Single();
        act.pow(S(2)).sum().backward();
        _ = x.grad!.sum().item<float>();
        return sw.Elapsed.TotalSeconds;
    }

    public static int Run(string[] args)
    {
        int reps = 5;
        int[] sizes = [224, 512];
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--reps") reps = int.Parse(args[i + 1]);
            if (args[i] == "--sizes") sizes = args[i + 1].Split(',').Select(int.Parse).ToArray();
        }
        set_num_threads(2);
        string root = Paths.Root();
        string shared = Path.Combine(root, "..", "shared", "models", "bvlc_googlenet.onnx");
        var rows = new List<(string What, int Size, double Seconds)>();

        // 1. Reverie on bvlc_googlenet, forward + input gradient to inception_4c/output.
        using (var net = OnnxNetwork.Load(shared, "googlenet", new InputSpec { Channels = ChannelOrder.Bgr, Scale = 255, Mean = [123.68f, 116.779f, 103.939f] }))
            foreach (var s in sizes) rows.Add(("Reverie fwd+grad, bvlc_googlenet", s, Median(() => ReverieStep(net, "inception_4c/output", s), reps)));

        // 2. ONNX Runtime forward alone to the same tensor (input made size-free, graph cut at inception_4c).
        using (var g = OnnxGraph.Load(shared))
        {
            string tap = g.ResolveTap("inception_4c/output");
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(shared));
            var input = model.Graph.Input.First(i => i.Name == "data_0");
            input.Type.TensorType.Shape.Dim[2].DimParam = "h";
            input.Type.TensorType.Shape.Dim[3].DimParam = "w";
            model.Graph.Output.Clear();
            model.Graph.Output.Add(new ValueInfoProto { Name = tap });
            // Keep only the nodes inception_4c depends on, as Reverie's truncated forward does.
            var needed = new HashSet<string> { tap };
            var keep = new List<NodeProto>();
            foreach (var n in model.Graph.Node.Reverse())
                if (n.Output.Any(needed.Contains)) { keep.Add(n); foreach (var i in n.Input) needed.Add(i); }
            model.Graph.Node.Clear();
            model.Graph.Node.AddRange(keep.AsEnumerable().Reverse());
            using var opts = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
            using var session = new InferenceSession(model.ToByteArray(), opts);
            foreach (var s in sizes)
            {
                var data = new DenseTensor<float>(Enumerable.Range(0, 3 * s * s).Select(i => (float)(i % 255 - 120)).ToArray(), [1, 3, s, s]);
                rows.Add(("ONNX Runtime fwd only, bvlc_googlenet", s, Median(() =>
                {
                    var sw = Stopwatch.StartNew();
                    using var r = session.Run([NamedOnnxValue.CreateFromTensor("data_0", data)]);
                    return sw.Elapsed.TotalSeconds;
                }, reps)));
            }
        }

        // 3. Debian's PyTorch on torchvision's GoogLeNet against Reverie on its ONNX export.
        string exportDir = Path.Combine(Path.GetTempPath(), "reverie-torchvision-exports-v2");
        string export = Path.Combine(exportDir, "googlenet_op13.onnx");
        var (code, text) = Paths.Python(Path.Combine(root, "tests", "scripts", "export_torchvision.py"), exportDir, "googlenet:13");
        if (code != 0) { Console.Error.WriteLine(text); return 1; }
        using (var net = OnnxNetwork.Load(export))
            foreach (var s in sizes) rows.Add(("Reverie fwd+grad, torchvision export", s, Median(() => ReverieStep(net, "inception4c", s), reps)));
        (code, text) = Paths.Python(Path.Combine(root, "bench", "scripts", "pytorch_googlenet_forward.py"), reps.ToString(), string.Join(' ', sizes).Split(' ')[0], sizes.Length > 1 ? sizes[1].ToString() : sizes[0].ToString());
        if (code != 0) { Console.Error.WriteLine(text); return 1; }
        var torchTimes = JsonSerializer.Deserialize<Dictionary<string, double>>(text.Trim().Split('\n').Last())!;
        foreach (var s in sizes) rows.Add(("PyTorch 1.13 fwd+grad, torchvision", s, torchTimes[s.ToString()]));

        var table = new Table().Title($"GoogLeNet to inception_4c, 2 threads, median of {reps}").AddColumn("run").AddColumn("size").AddColumn(new TableColumn("ms").RightAligned());
        foreach (var r in rows) table.AddRow(r.What, r.Size.ToString(), (r.Seconds * 1000).ToString("0.0"));
        AnsiConsole.Write(table);
        foreach (var s in sizes)
        {
            double Get(string w) => rows.First(r => r.What.StartsWith(w) && r.Size == s).Seconds;
            Console.WriteLine($"{s}px: Reverie/PyTorch (same torchvision model, fwd+grad) = {Get("Reverie fwd+grad, torchvision") / Get("PyTorch"):0.00}; " +
                              $"Reverie fwd+grad / ORT fwd (bvlc_googlenet) = {Get("Reverie fwd+grad, bvlc") / Get("ONNX Runtime"):0.00}");
        }
        return 0;
    }
}
