using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using Reverie.Recipes;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.Dream;

/// <summary><c>reverie dream IMAGE [-o OUT]</c>: DeepDream with octaves, jitter, guide images, tiles and zoom animations.</summary>
internal static class DreamCommand
{
    /// <summary>Largest image dreamed without tiles (pixels).</summary>
    const long MaxUntiledPixels = 2048L * 2048;

    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = "The photo to dream on." };
        var output = new Option<string?>("--output", "-o") { Description = "Output file (.png or .jpg; .gif or .mp4 with --zoom). Default: IMAGE-dream.png." };
        var model = new Option<string?>("--model", "-m") { Description = "Model: a registry name, checkpoint, weights or .onnx file. Default: googlenet when cached or downloadable, else the embedded textures model." };
        var layers = new Option<string[]>("--layer", "-l") { Description = "Layer to amplify: NAME[:CHANNELS][*WEIGHT]; repeatable (default: inception_4c/output, or the model's own dream layer).", AllowMultipleArgumentsPerToken = false };
        var octaves = new Option<int>("--octaves") { Description = "Octaves of the image pyramid.", DefaultValueFactory = _ => 4 };
        var octaveScale = new Option<double>("--octave-scale") { Description = "Scale between octaves.", DefaultValueFactory = _ => 1.4 };
        var steps = new Option<int>("--steps") { Description = "Gradient steps per octave.", DefaultValueFactory = _ => 10 };
        var stepSize = new Option<double>("--step-size") { Description = "Step size in 0..255 pixel units (the notebook's).", DefaultValueFactory = _ => 1.5 };
        var jitter = new Option<int>("--jitter") { Description = "Largest random roll in pixels.", DefaultValueFactory = _ => 32 };
        var tile = new Option<int>("--tile") { Description = "Tile size for large images; 0 disables tiles.", DefaultValueFactory = _ => 512 };
        var guide = new Option<string?>("--guide") { Description = "Guide image: dream toward its features at the (first) layer." };
        var smooth = new Option<double>("--smooth") { Description = "Gaussian smoothing of the gradient (sigma in pixels at the first octave, shrinking per octave)." };
        var keepColors = new Option<bool>("--keep-colors") { Description = "Keep the photo's colours; transfer only luminance (YCbCr)." };
        var maxSize = new Option<int?>("--max-size") { Description = "Shrink the photo first so that its longer side is at most PX." };
        var seed = new Option<int>("--seed") { Description = "Seed of the random jitter.", DefaultValueFactory = _ => 0 };
        var snapshots = new Option<string?>("--snapshots") { Description = "Folder to save the image after each octave." };
        var zoom = new Option<int>("--zoom") { Description = "Make an animation of FRAMES frames, each the dream of the previous one zoomed in." };
        var zoomScale = new Option<double>("--zoom-scale") { Description = "Zoom per frame (fraction cropped).", DefaultValueFactory = _ => 0.05 };
        var zoomRotate = new Option<double>("--zoom-rotate") { Description = "Rotation per frame in degrees." };
        var precision = new Option<string>("--precision") { Description = "fp32, or bf16 to run the network in bfloat16 (faster on CPUs with AVX-512 BF16; the image stays fp32).", DefaultValueFactory = _ => "fp32" };
        var device = new Option<string>("--device") { Description = "cpu or cuda (cuda needs the CUDA build of TorchSharp).", DefaultValueFactory = _ => "cpu" };

        var cmd = new Command("dream", "DeepDream: amplify what a layer of the network detects in a photo.")
        { image, output, model, layers, octaves, octaveScale, steps, stepSize, jitter, tile, guide, smooth, keepColors, maxSize, seed, snapshots, zoom, zoomScale, zoomRotate, precision, device };

        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            var outw = p.InvocationConfiguration.Output;
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                var options = new DreamOptions
                {
                    Octaves = p.GetValue(octaves), OctaveScale = p.GetValue(octaveScale), Steps = p.GetValue(steps),
                    StepSize = p.GetValue(stepSize), Jitter = p.GetValue(jitter), Tile = p.GetValue(tile),
                    Smooth = p.GetValue(smooth), KeepColors = p.GetValue(keepColors), Seed = p.GetValue(seed),
                    BFloat16 = p.GetValue(precision) switch
                    {
                        "fp32" => false,
                        "bf16" => true,
                        var x => throw new BadInputException($"--precision must be fp32 or bf16; got '{x}'."),
                    },
                };
                options.Validate();
                string input = p.GetValue(image)!;
                int frames = p.GetValue(zoom);
                if (frames < 0 || frames > 10000) throw new BadInputException($"--zoom must be from 1 to 10000 frames; got {frames}.");
                double zs = p.GetValue(zoomScale);
                if (zs < 0 || zs >= 0.5) throw new BadInputException($"--zoom-scale must be from 0 to 0.5; got {zs}.");
                string outPath = p.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(input) ?? ".", Path.GetFileNameWithoutExtension(input) + (frames > 0 ? "-zoom.gif" : "-dream.png"));
                string ext = Path.GetExtension(outPath).ToLowerInvariant();
                if (frames > 0 && ext is not (".gif" or ".mp4")) throw new BadInputException($"With --zoom the output must be .gif or .mp4; got '{outPath}'.");
                if (frames == 0) ImageIO.FormatFor(outPath);
                if (ext == ".mp4" && !Ffmpeg.Available) throw new BadInputException("MP4 output needs ffmpeg, which is not installed (Debian: apt-get install ffmpeg); write a .gif instead.");
                string? snapDir = p.GetValue(snapshots);
                if (snapDir is not null) Directory.CreateDirectory(snapDir);
                var dev = p.GetValue(device) switch
                {
                    "cpu" => CPU,
                    "cuda" => cuda.is_available() ? CUDA : throw new BadInputException("--device cuda: CUDA is not available (this build references the CPU TorchSharp package, or there is no GPU)."),
                    var d => throw new BadInputException($"--device must be cpu or cuda; got '{d}'."),
                };

                using var photoFull = ImageIO.Load(input);
                var photo = photoFull;
                if (p.GetValue(maxSize) is { } mx)
                {
                    if (mx < 32) throw new BadInputException($"--max-size must be at least 32; got {mx}.");
                    double f = (double)mx / Math.Max(photo.shape[2], photo.shape[3]);
                    if (f < 1) photo = ImageIO.Resize(photo, (int)Math.Round(photo.shape[2] * f), (int)Math.Round(photo.shape[3] * f));
                }
                long pixels = photo.shape[2] * photo.shape[3];
                if (options.Tile == 0 && pixels > MaxUntiledPixels)
                    throw new BadInputException($"The image is {photo.shape[3]}x{photo.shape[2]}, too large to dream without tiles (at most {MaxUntiledPixels / 1_000_000.0:0.#} megapixels); use --tile 512 or --max-size.");

                var registry = ModelLoading.Registry(p);
                using var net = p.GetValue(model) is { } m ? await ModelLoading.OpenAsync(registry, m, err, cts.Token) : await ModelLoading.OpenDreamDefaultAsync(registry, err, cts.Token);
                if (dev.type != TorchSharp.DeviceType.CPU) net.To(dev);
                string defaultLayer = net is Reverie.Training.ConvNet { DreamLayer: { } dl } ? dl : "inception_4c/output";
                var specs = (p.GetValue(layers) is { Length: > 0 } ls ? ls : [defaultLayer]).Select(LayerSpec.Parse).ToList();
                Objective objective;
                if (p.GetValue(guide) is { } guidePath)
                {
                    using var guideImage = ImageIO.Load(guidePath);
                    specs[0].ToObjective(net); // validates the layer
                    objective = DeepDream.Guide(net, net.ResolveLayer(specs[0].Layer), guideImage);
                }
                else objective = specs.Select(s => s.ToObjective(net)).Aggregate((a, b) => a + b);
                if (options.BFloat16) net.To(dev, ScalarType.BFloat16);

                var recipe = RecipeCapture.Recipe(p, "dream", new JsonObject
                    {
                        ["model"] = net.Name, ["layers"] = new JsonArray(specs.Select(s => (JsonNode)s.ToString()).ToArray()),
                        ["objective"] = objective.Describe(), ["octaves"] = options.Octaves, ["octaveScale"] = options.OctaveScale,
                        ["steps"] = options.Steps, ["stepSize"] = options.StepSize, ["jitter"] = options.Jitter, ["tile"] = options.Tile,
                        ["smooth"] = options.Smooth, ["keepColors"] = options.KeepColors, ["seed"] = options.Seed, ["precision"] = options.BFloat16 ? "bf16" : "fp32",
                        ["size"] = $"{photo.shape[3]}x{photo.shape[2]}", ["guide"] = p.GetValue(guide), ["zoom"] = frames,
                    });

                var console = ReverieCli.StatusConsole(err);
                var sw = Stopwatch.StartNew();
                Tensor result = null!;
                var frameList = new List<byte[]>();
                int done = 0;
                await console.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        int totalFrames = Math.Max(1, frames);
                        var task = ctx.AddTask("dreaming", maxValue: totalFrames * options.Octaves * options.Steps);
                        var current = photo.to(dev);
                        for (int fi = 0; fi < totalFrames && !cts.IsCancellationRequested; fi++)
                        {
                            var dream = new DeepDream(net, objective, options with { Seed = options.Seed + fi });
                            int baseCount = fi * options.Octaves * options.Steps;
                            var progress = new SyncProgress<DreamProgress>(pr =>
                            {
                                task.Description = frames > 0 ? $"frame {fi + 1}/{frames} octave {pr.Octave + 1}/{pr.Octaves} step {pr.Step}/{pr.Steps}" : $"octave {pr.Octave + 1}/{pr.Octaves} step {pr.Step}/{pr.Steps}";
                                task.Value = baseCount + pr.Octave * pr.Steps + pr.Step;
                            });
                            var snapCallback = snapDir is null ? null : (Action<int, Tensor>)((o, img) => ImageIO.Save(img, Path.Combine(snapDir, frames > 0 ? $"frame{fi:D4}-octave{o + 1}.png" : $"octave{o + 1}.png")));
                            var next = await Task.Run(() => dream.Run(current, progress, cts.Token, snapCallback));
                            done++;
                            if (frames > 0)
                            {
                                frameList.Add(ImageIO.ToRgba(next).Rgba);
                                current = Zoom(next, zs, p.GetValue(zoomRotate));
                            }
                            result = next;
                        }
                        task.Value = task.MaxValue;
                    });

                if (frames > 0)
                {
                    int w = (int)result.shape[3], h = (int)result.shape[2];
                    if (ext == ".gif") AtomicFile.WriteAllBytes(outPath, GifWriter.Encode(frameList, w, h));
                    else Ffmpeg.WriteMp4(frameList, w, h, outPath);
                    AtomicFile.WriteAllText(Path.ChangeExtension(outPath, ".json"), recipe.ToJson());
                }
                else recipe.SaveWithImage(result, outPath);
                outw.WriteLine(cts.IsCancellationRequested
                    ? $"interrupted: saved the dream as far as it got to {outPath}"
                    : $"{outPath} ({result.shape[3]}x{result.shape[2]}, {objective.Describe()}, {sw.Elapsed.TotalSeconds:0.0} s)");
                return cts.IsCancellationRequested && !cancel.IsCancellationRequested ? 130 : ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
            finally { Console.CancelKeyPress -= onCancel; }
        });
        return cmd;
    }

    /// <summary>Zooms into the centre by <paramref name="scale"/> and rotates by <paramref name="degrees"/>, keeping the size.</summary>
    internal static Tensor Zoom(Tensor image, double scale, double degrees)
    {
        using var scope = NewDisposeScope();
        double z = 1 - scale, a = degrees * Math.PI / 180;
        var theta = tensor(new float[] { (float)(Math.Cos(a) * z), (float)(-Math.Sin(a) * z), 0, (float)(Math.Sin(a) * z), (float)(Math.Cos(a) * z), 0 }, device: image.device).reshape(1, 2, 3);
        var grid = nn.functional.affine_grid(theta, image.shape, align_corners: false);
        var zoomed = nn.functional.grid_sample(image, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Reflection, align_corners: false);
        return zoomed.MoveToOuterDisposeScope();
    }
}

/// <summary>Debian's ffmpeg, for MP4 output.</summary>
internal static class Ffmpeg
{
    public static bool Available => Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(d => File.Exists(Path.Combine(d, "ffmpeg"))) ?? false;

    public static void WriteMp4(IReadOnlyList<byte[]> rgbaFrames, int width, int height, string path)
    {
        string tmp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.mp4");
        var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", $"{width}x{height}", "-r", "12", "-i", "-",
                     "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", "libx264", tmp })
            psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        var errTask = proc.StandardError.ReadToEndAsync();
        foreach (var f in rgbaFrames) proc.StandardInput.BaseStream.Write(f);
        proc.StandardInput.Close();
        proc.WaitForExit();
        if (proc.ExitCode != 0)
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            throw new ReverieException($"ffmpeg failed to write '{path}': {errTask.Result.Split('\n')[0]}");
        }
        File.Move(tmp, path, overwrite: true);
    }
}
