using System.Diagnostics;
using System.Globalization;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Style;
using Reverie.Video;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Bench;

/// <summary>
/// A video stylized frame by frame at 480p: a pan over examples/rocket.jpg (854×480, N frames,
/// made by ffmpeg), through a style network of Johnson's shape (seeded, untrained: the time is the
/// same), with the optical flow (the default) and without. Reports the time per frame, the flow's
/// share and the network's share, as the job's results record them.
/// </summary>
internal static class VideoBenchmark
{
    public static int Run(string[] args)
    {
        int frames = 100;
        for (int i = 0; i < args.Length - 1; i++)
            if (args[i] == "--frames") frames = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        string root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));
        string dir = Path.Combine(Path.GetTempPath(), $"reverie-bench-video-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string input = Path.Combine(dir, "pan.mp4"), net = Path.Combine(dir, "net.onnx");
            var make = Process.Start(new ProcessStartInfo("ffmpeg", ["-v", "error", "-y", "-loop", "1", "-i", Path.Combine(root, "examples", "rocket.jpg"),
                "-vf", "scale=1280:-2,crop=854:480:x='20+3*n':y='40+n'", "-frames:v", frames.ToString(CultureInfo.InvariantCulture), "-r", "25", "-pix_fmt", "yuv420p", input]))!;
            make.WaitForExit();
            if (make.ExitCode != 0) { Console.Error.WriteLine("ffmpeg could not make the test video"); return 1; }
            random.manual_seed(0);
            using (var t = new TransformerNet()) File.WriteAllBytes(net, t.ToOnnx());
            var table = new Table().Title($"stylize a {frames}-frame 854x480 video, 2 threads").AddColumn("flow")
                .AddColumn(new TableColumn("s / frame").RightAligned()).AddColumn(new TableColumn("flow s / frame").RightAligned())
                .AddColumn(new TableColumn("network s / frame").RightAligned()).AddColumn(new TableColumn("total s").RightAligned());
            foreach (var flow in new[] { FlowMethod.SparseToDense, FlowMethod.Farneback, FlowMethod.None })
            {
                var options = new StylizeJobOptions { Model = net, Image = input, Video = new VideoOptions { Flow = VideoOptions.Name(flow) } };
                var job = JobCatalog.Find("stylize")!;
                string output = Path.Combine(dir, $"out-{flow}.mp4");
                var sw = Stopwatch.StartNew();
                var result = job.RunAsync(options, new JobContext { Output = output, Recipe = JobCatalog.RecipeFor(job, options) }).GetAwaiter().GetResult();
                double total = sw.Elapsed.TotalSeconds;
                var r = (VideoResults)result.Results!;
                table.AddRow(flow.ToString(), F(total / r.Frames), F(r.FlowSeconds / r.Frames), F(r.FrameSeconds / r.Frames), F(total));
            }
            AnsiConsole.Write(table);
            return 0;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static string F(double v) => v.ToString("0.000", CultureInfo.InvariantCulture);
}
