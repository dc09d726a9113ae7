using System.Diagnostics;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using Reverie.Video;
using static TorchSharp.torch;

namespace Reverie.Dreaming;

/// <summary>The options of <c>reverie dream</c>: the photo, what to amplify, the dream's settings, and the zoom animation.</summary>
public sealed record DreamJobOptions : JobOptions
{
    /// <summary>The photo (an absolute path in recipes).</summary>
    public required string Input { get; init; }
    /// <summary>Layers to amplify, each an objective term (<c>NAME</c>, <c>l2(NAME:CHANNELS)</c>, <c>NAME*WEIGHT</c>); summed. Empty: the model's dream layer.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];
    /// <summary>An objective in the objective language, added to the layers' (e.g. <c>inception_4c/output + 5*class:espresso</c>).</summary>
    public string? Objective { get; init; }
    /// <summary>A guide image: dream toward its features at the first layer, instead of the layers' L2.</summary>
    public string? Guide { get; init; }
    /// <summary>
    /// An image whose most active channels the dream amplifies: the <see cref="NodesTop"/> channels of
    /// the first layer with the largest mean activation on this image, in any photo (the L2 of those
    /// channels only). Unlike <see cref="Guide"/>, positions do not matter.
    /// </summary>
    public string? NodesOf { get; init; }
    /// <summary>How many channels <see cref="NodesOf"/> picks.</summary>
    public int NodesTop { get; init; } = 8;
    /// <summary>Shrink the photo first so that its longer side is at most this many pixels.</summary>
    public int? MaxSize { get; init; }
    /// <summary>Frames of a zoom animation (0: a still dream).</summary>
    public int Zoom { get; init; }
    /// <summary>Zoom per frame, the fraction cropped.</summary>
    public double ZoomScale { get; init; } = 0.05;
    /// <summary>Rotation per frame, in degrees.</summary>
    public double ZoomRotate { get; init; }
    /// <summary>The dream's settings (octaves, steps, jitter, tiles ...); its seed and precision are the job's.</summary>
    public DreamOptions Dream { get; init; } = new();
    /// <summary>For a video input: the optical flow and blend that carry each dreamed frame into the next.</summary>
    public VideoOptions Video { get; init; } = new();

    /// <summary>Largest image dreamed without tiles (pixels).</summary>
    public const long MaxUntiledPixels = 2048L * 2048;

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Input, .. Guide is null ? Array.Empty<string>() : [Guide], .. NodesOf is null ? Array.Empty<string>() : [NodesOf]];

    /// <summary>The dream settings with the job's seed and precision.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public DreamOptions Effective => Dream with { Seed = Seed, BFloat16 = BFloat16 };

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Effective.Validate();
        Check.Finite(("--zoom-scale", ZoomScale), ("--zoom-rotate", ZoomRotate));
        Video.Validate();
        if (Zoom > 0 && Ffmpeg.IsVideo(Input)) throw new BadInputException("--zoom makes an animation from one photo; a video input is dreamed frame by frame without it.");
        if (Zoom < 0 || Zoom > 10000) throw new BadInputException($"--zoom must be from 1 to 10000 frames; got {Zoom}.");
        if (ZoomScale < 0 || ZoomScale >= 0.5) throw new BadInputException($"--zoom-scale must be from 0 to 0.5; got {ZoomScale}.");
        if (MaxSize is < 32 or > 16384) throw new BadInputException($"--max-size must be from 32 to 16384; got {MaxSize}.");
        if (Guide is not null && Objective is not null) throw new BadInputException("--guide dreams toward the guide's features at the first --layer; it cannot be combined with --objective.");
        if (NodesOf is not null && Guide is not null) throw new BadInputException("--nodes-of and --guide are two ways to follow an image; give one.");
        if (NodesTop is < 1 or > 4096) throw new BadInputException($"--top must be from 1 to 4096 channels; got {NodesTop}.");
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The photo (from its header, after --max-size) held about 10 times at full size (the photo, the
    /// dream, the octaves' detail and gradient, the saved result), and the network over one tile with its
    /// margins, or over the whole image when it is dreamed without tiles. A video is estimated per frame by
    /// the same terms once its frames are read; not here.
    /// </remarks>
    internal override MemoryEstimate? EstimateMemory()
    {
        if (Ffmpeg.IsVideo(Input) || ImageIO.Dimensions(Input) is not var (w, h)) return null;
        long pixels = ImageIO.PixelsWithin(w, h, MaxSize);
        double f = Math.Sqrt(pixels / ((double)w * h));
        long sh = (long)Math.Ceiling(h * f), sw = (long)Math.Ceiling(w * f);
        int tile = Effective.TileFor(sh, sw);
        if (tile == 0 && pixels > MaxUntiledPixels) return null; // the job refuses it with the sentence that says to tile
        long through = tile == 0 ? pixels : (long)(tile + 2 * Dream.TileMargin) * (tile + 2 * Dream.TileMargin);
        string model = Model ?? "googlenet";
        return new(MemoryEstimate.Sum(MemoryEstimate.Images(pixels, 10), MemoryEstimate.Network(model, 1, through)),
            $"a {sw}x{sh} photo{(tile == 0 ? " dreamed whole" : $" in tiles of {tile}")} through {MemoryEstimate.Shown(model)}");
    }
}

/// <summary>What a dream measured.</summary>
/// <param name="Model">The model used.</param>
/// <param name="Objective">The objective, as the language writes it.</param>
/// <param name="Size">Width x height of the result.</param>
/// <param name="Seconds">Time taken.</param>
internal sealed record DreamResults(string Model, string Objective, string Size, double Seconds);

/// <summary><c>reverie dream</c> as a job: DeepDream on a photo, or a zoom animation of dreams (GIF or MP4).</summary>
internal sealed class DreamJob : Job<DreamJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "dream";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <summary>The default output beside the photo: IMAGE-dream.png, IMAGE-zoom.gif for an animation, VIDEO-dream.mp4 for a video.</summary>
    public static string DefaultOutput(DreamJobOptions o) =>
        Path.Combine(Path.GetDirectoryName(o.Input) ?? ".", Path.GetFileNameWithoutExtension(o.Input) + (Ffmpeg.IsVideo(o.Input) ? "-dream.mp4" : o.Zoom > 0 ? "-zoom.gif" : "-dream.png"));

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(DreamJobOptions o, JobContext c)
    {
        if (Ffmpeg.IsVideo(o.Input)) return await RunVideoAsync(o, c);
        var options = o.Effective;
        int frames = o.Zoom;
        string ext = Path.GetExtension(c.Output).ToLowerInvariant();
        if (frames > 0 && ext is not (".gif" or ".mp4")) throw new BadInputException($"With --zoom the output must be .gif or .mp4; got '{c.Output}'.");
        if (frames == 0) c.CheckImageOutput();
        if (ext == ".mp4" && !Ffmpeg.Available) throw new BadInputException("MP4 output needs ffmpeg, which is not installed (Debian: apt-get install ffmpeg); write a .gif instead.");
        var device = o.TorchDevice();
        if (c.Snapshots is { } dir)
        {
            if (File.Exists(dir)) throw new BadInputException($"--snapshots '{BadInputException.Shown(dir)}' is a file; it needs a folder.");
            Directory.CreateDirectory(dir);
        }

        using var photoFull = ImageIO.Load(o.Input, o.MaxSize);
        var photo = o.MaxSize is { } mx ? Capture.Shrink(photoFull, mx) : photoFull;
        long pixels = photo.shape[2] * photo.shape[3];
        if (options.TileFor(photo.shape[2], photo.shape[3]) == 0 && pixels > DreamJobOptions.MaxUntiledPixels)
            throw new BadInputException($"The image is {photo.shape[3]}x{photo.shape[2]}, too large to dream without tiles (at most {DreamJobOptions.MaxUntiledPixels / 1_000_000.0:0.#} megapixels); use --tile 512 or --max-size.");

        using var net = o.Model is { } m ? await c.OpenModelAsync(m) : await c.OpenDreamDefaultAsync();
        if (o.Model is null) c.Resolved(o with { Model = net.Name });
        if (device.type != TorchSharp.DeviceType.CPU) net.To(device);
        var objective = BuildObjective(net, o);
        if (o.BFloat16) net.To(device, ScalarType.BFloat16);

        var sw = Stopwatch.StartNew();
        int perFrame = options.Octaves * options.Steps, totalFrames = Math.Max(1, frames);
        var frameList = new List<byte[]>();
        var current = photo.to(device);
        Tensor result = current;
        int steps = 0;
        bool interrupted = false;
        for (int fi = 0; fi < totalFrames && !c.Cancel.IsCancellationRequested; fi++)
        {
            var dream = new DeepDream(net, objective, options with { Seed = options.Seed + fi });
            int frame = fi;
            var progress = c.Steps((long)fi * perFrame, (long)totalFrames * perFrame,
                s => (frames > 0 ? $"frame {frame + 1}/{frames} " : "") + $"octave {s.Stage + 1}/{s.Stages} step {s.Step}/{s.Steps}",
                s => frames > 0 ? $"frame{frame:D4}-octave{s.Stage + 1}.png" : $"octave{s.Stage + 1}.png");
            var r = await Task.Run(() => dream.RunFull(current, progress, c.Cancel));
            steps += r.Steps;
            interrupted |= r.Cancelled;
            result = r.Image;
            if (r.Cancelled && frames > 0) break; // a half-dreamed frame does not join the animation
            if (frames > 0)
            {
                frameList.Add(ImageIO.ToRgba(result).Rgba);
                current = Zoom.Step(result, o.ZoomScale, o.ZoomRotate);
            }
        }
        interrupted |= c.Cancel.IsCancellationRequested;
        var results = new DreamResults(net.Name, objective.Describe(), $"{result.shape[3]}x{result.shape[2]}", Math.Round(sw.Elapsed.TotalSeconds, 2));
        if (frames > 0)
        {
            if (frameList.Count == 0) return new JobResult([], "interrupted before the first frame was done; nothing saved", true);
            int w = (int)result.shape[3], h = (int)result.shape[2];
            if (ext == ".gif") AtomicFile.WriteAllBytes(c.Output, GifWriter.Encode(frameList, w, h));
            else Ffmpeg.WriteMp4(frameList, w, h, c.Output);
            c.Finished(results, steps, interrupted).SaveBeside(c.Output);
        }
        else c.Save(result, c.Output, results, steps, interrupted);
        string summary = interrupted
            ? $"interrupted: saved the dream as far as it got ({steps} steps) to {c.Output}"
            : $"{c.Output} ({result.shape[3]}x{result.shape[2]}, {objective.Describe()}, {sw.Elapsed.TotalSeconds:0.0} s)";
        return new JobResult([c.Output], summary, interrupted);
    }

    /// <summary>
    /// A video dreamed frame by frame: each frame starts from itself blended with the previous dream
    /// warped along the optical flow (<see cref="CoherentVideo"/>), and its dream is blended with that
    /// warped dream again, so that patterns follow the motion and change gradually instead of
    /// flickering; every frame gets the same seed.
    /// </summary>
    async Task<JobResult> RunVideoAsync(DreamJobOptions o, JobContext c)
    {
        CoherentVideo.CheckOutput(c);
        var info = Ffmpeg.Probe(o.Input);
        var options = o.Effective;
        var (w, h) = CoherentVideo.FrameSize(info, o.MaxSize);
        if (options.TileFor(h, w) == 0 && (long)w * h > DreamJobOptions.MaxUntiledPixels)
            throw new BadInputException($"The video's frames are {w}x{h}, too large to dream without tiles (at most {DreamJobOptions.MaxUntiledPixels / 1_000_000.0:0.#} megapixels); use --tile 512 or --max-size.");
        using var net = o.Model is { } m ? await c.OpenModelAsync(m) : await c.OpenDreamDefaultAsync();
        if (o.Model is null) c.Resolved(o with { Model = net.Name });
        var device = o.TorchDevice();
        if (device.type != TorchSharp.DeviceType.CPU) net.To(device);
        var objective = BuildObjective(net, o);
        if (o.BFloat16) net.To(device, ScalarType.BFloat16);
        var sw = Stopwatch.StartNew();
        int perFrame = options.Octaves * options.Steps, steps = 0;
        long totalFrames = Math.Max(1, info.Frames);
        var run = await Task.Run(() => CoherentVideo.Run(o.Input, info, o.Video, o.MaxSize, c, (t, frame, link) =>
        {
            var start = o.Video.DreamFromPrevious ? link?.Blend(frame) ?? frame : frame;
            var dream = new DeepDream(net, objective, options);
            var progress = c.Steps((long)t * perFrame, totalFrames * perFrame, s => $"frame {t + 1}/{totalFrames} octave {s.Stage + 1}/{s.Stages} step {s.Step}/{s.Steps}");
            var r = dream.RunFull(start.to(device), progress, c.Cancel);
            steps += r.Steps;
            // The dream is blended with the warped previous output again, so that what the new steps add joins the patterns gradually instead of flickering.
            return r.Cancelled ? null : CoherentVideo.Join(r.Image.cpu(), link);
        }));
        var results = run.Results(net.Name, objective.Describe(), o.Video.Flow, sw.Elapsed.TotalSeconds);
        return CoherentVideo.Finish(c, run, results, steps);
    }

    /// <summary>
    /// The layer a dream amplifies when none is named: a trained checkpoint's own; GoogLeNet's
    /// inception_4c/output (the notebook's); for a ResNet, layer3.1, the last block at 1/16 of the
    /// image, whose dreams show eyes, fur and animal faces (layer2 paints textures, layer4 objects
    /// too coarse at photo sizes).
    /// </summary>
    public static string DefaultLayer(INetwork net) =>
        net is Training.ConvNet { DreamLayer: { } dl } ? dl
        : net.HasLayer("inception_4c/output") ? "inception_4c/output"
        : net.HasLayer("layer3.1") ? "layer3.1"
        : "inception_4c/output"; // named in the sentence that says the model lacks it

    /// <summary>
    /// The <paramref name="top"/> channels of <paramref name="layer"/> with the largest mean activation
    /// on <paramref name="image"/> (resized to the network's input, as <c>classify</c> sees it), in
    /// decreasing order.
    /// </summary>
    public static IReadOnlyList<int> MostActiveChannels(INetwork net, string layer, Tensor image, int top, string? layerName = null)
    {
        using var scope = NewDisposeScope();
        Tensor acts;
        using (no_grad()) acts = Capture.Features(net, ImageIO.Resize(image, net.Input.Height, net.Input.Width), [layer])[layer];
        if (acts.dim() != 4) throw new BadInputException($"--nodes-of needs a layer with channels and positions; '{BadInputException.Shown(layerName ?? layer)}' has shape [{string.Join(",", acts.shape)}].");
        long channels = acts.shape[1];
        if (top > channels) throw new BadInputException($"--top {top} is more than the {channels} channels of the layer.");
        var mean = acts[0].to(ScalarType.Float32).flatten(1).mean([1]);
        return mean.argsort(descending: true).narrow(0, 0, top).cpu().data<long>().Select(i => (int)i).ToList();
    }

    /// <summary>The dream's objective: the guide's, or the sum of the layers' terms plus the objective expression.</summary>
    public static Objective BuildObjective(INetwork net, DreamJobOptions o)
    {
        var language = new ObjectiveLanguage(net);
        string defaultLayer = DefaultLayer(net);
        var layers = o.Layers.Count > 0 ? o.Layers : o.Objective is null ? [defaultLayer] : [];
        if (o.Guide is { } guidePath)
        {
            string first = layers.Count > 0 ? layers[0] : defaultLayer;
            if (!net.HasLayer(first)) language.ParseDreamLayer(first); // one sentence for a bad layer
            if (!net.HasLayer(first)) throw new BadInputException($"--guide needs a plain layer name as the first --layer; got '{BadInputException.Shown(first)}'.");
            using var guideImage = ImageIO.Load(guidePath);
            return GuideObjective.Of(net, net.ResolveLayer(first), guideImage);
        }
        if (o.NodesOf is { } nodesPath)
        {
            string first = layers.Count > 0 ? layers[0] : defaultLayer;
            if (!net.HasLayer(first)) language.ParseDreamLayer(first); // one sentence for a bad layer
            if (!net.HasLayer(first)) throw new BadInputException($"--nodes-of needs a plain layer name as the first --layer; got '{BadInputException.Shown(first)}'.");
            using var nodesImage = ImageIO.Load(nodesPath, 2 * Math.Max(net.Input.Width, net.Input.Height));
            var channels = MostActiveChannels(net, net.ResolveLayer(first), nodesImage, o.NodesTop, first);
            layers = [$"l2({first}:{ObjectiveLanguage.FormatChannels(channels)})", .. layers.Skip(1)];
        }
        var terms = layers.Select(language.ParseDreamLayer).ToList();
        if (o.Objective is { } expr) terms.Add(language.Parse(expr));
        return terms.Aggregate((a, b) => a + b);
    }
}
