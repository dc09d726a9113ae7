using System.Diagnostics;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Video;

namespace Reverie.Style;

/// <summary>
/// The options of <c>reverie stylize</c>: one forward pass of a trained style network over a photo.
/// <see cref="JobOptions.Model"/> is the style network (an image-to-image ONNX file).
/// </summary>
public sealed record StylizeJobOptions : JobOptions
{
    /// <summary>The photo (an absolute path in recipes).</summary>
    public required string Image { get; init; }
    /// <summary>Images whose longer side exceeds this are done tile by tile; 0 never.</summary>
    public int Tile { get; init; } = 1024;
    /// <summary>Shrink the photo first so that its longer side is at most this; 0 keeps it.</summary>
    public int MaxSize { get; init; }
    /// <summary>For a video input: the optical flow and blend that carry each stylized frame into the next.</summary>
    public VideoOptions Video { get; init; } = new();

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), Image];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is null) throw new BadInputException("stylize needs a style network (--net NET.onnx).");
        if (!File.Exists(Model)) throw new BadInputException($"Style network '{BadInputException.Shown(Model)}' does not exist.");
        if (Tile < 0 || (Tile > 0 && Tile < 64)) throw new BadInputException($"--tile must be 0 or at least 64; got {Tile}.");
        if (MaxSize < 0) throw new BadInputException($"--max-size must not be negative; got {MaxSize}.");
        Video.Validate();
    }

    /// <inheritdoc/>
    /// <remarks>The photo (from its header, after --max-size) held about 4 times (input, output, blended tiles), and one tile's forward pass without gradients.</remarks>
    internal override MemoryEstimate? EstimateMemory()
    {
        if (Ffmpeg.IsVideo(Image) || ImageIO.Dimensions(Image) is not var (w, h)) return null;
        long pixels = ImageIO.PixelsWithin(w, h, MaxSize > 0 ? MaxSize : null);
        long side = Math.Max(w, h);
        long through = Tile > 0 && side > Tile ? (long)Tile * Tile : pixels;
        return new(MemoryEstimate.Sum(MemoryEstimate.Images(pixels, 4), MemoryEstimate.Network(Model, 1, through) / 4),
            $"a photo of {pixels / 1_000_000.0:0.#} megapixels{(through < pixels ? $" in tiles of {Tile}" : "")} through the style network");
    }
}

/// <summary>What a stylize run produced.</summary>
/// <param name="Width">The result's width.</param>
/// <param name="Height">The result's height.</param>
/// <param name="Seconds">The forward pass's time.</param>
internal sealed record StylizeResults(long Width, long Height, double Seconds);

/// <summary><c>reverie stylize</c> as a job: a photo through a fast style network, whole or by tiles.</summary>
internal sealed class StylizeJob : Job<StylizeJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "stylize";

    /// <inheritdoc/>
    protected override Task<JobResult> RunAsync(StylizeJobOptions o, JobContext c)
    {
        if (Ffmpeg.IsVideo(o.Image)) return RunVideoAsync(o, c);
        c.CheckImageOutput();
        using var photo = ImageIO.Load(o.Image, o.MaxSize > 0 ? o.MaxSize : null);
        var x = photo;
        long side = Math.Max(photo.shape[2], photo.shape[3]);
        if (o.MaxSize > 0 && side > o.MaxSize)
        {
            double f = (double)o.MaxSize / side;
            x = ImageIO.Resize(photo, (int)Math.Round(photo.shape[2] * f), (int)Math.Round(photo.shape[3] * f));
        }
        if (o.Tile == 0 && x.shape[2] * x.shape[3] > 4096L * 4096) throw new BadInputException($"A {x.shape[3]}x{x.shape[2]} image needs tiles; drop --tile 0.");
        using var stylizer = Stylizer.Load(o.Model!);
        c.Report(new JobEvent { Stage = "stylizing", Step = 0, Total = 1 });
        var sw = Stopwatch.StartNew();
        using var result = stylizer.Apply(x, o.Tile);
        var results = new StylizeResults(result.shape[3], result.shape[2], sw.Elapsed.TotalSeconds);
        c.Report(new JobEvent { Stage = "stylized", Step = 1, Total = 1, Preview = c.PreviewEvery > 0 ? result : null });
        c.Save(result, c.Output, results, steps: 1);
        if (!ReferenceEquals(x, photo)) x.Dispose();
        return Task.FromResult(new JobResult([c.Output], $"{c.Output} ({results.Width}x{results.Height}, one forward pass in {results.Seconds:0.00} s)", false, results));
    }

    /// <summary>
    /// A video stylized frame by frame: each frame's stylized picture is blended with the previous
    /// output warped along the optical flow where the flow is consistent (<see cref="CoherentVideo"/>),
    /// which removes the flicker of a network that answers small changes of its input with large ones.
    /// </summary>
    static async Task<JobResult> RunVideoAsync(StylizeJobOptions o, JobContext c)
    {
        CoherentVideo.CheckOutput(c);
        var info = Ffmpeg.Probe(o.Image);
        using var stylizer = Stylizer.Load(o.Model!);
        var sw = Stopwatch.StartNew();
        var run = await Task.Run(() => CoherentVideo.Run(o.Image, info, o.Video, o.MaxSize > 0 ? o.MaxSize : null, c, (t, frame, link) =>
        {
            using var styled = stylizer.Apply(frame, o.Tile);
            return CoherentVideo.Join(styled, link);
        }));
        var results = run.Results(null, null, o.Video.Flow, sw.Elapsed.TotalSeconds);
        return CoherentVideo.Finish(c, run, results, run.Frames);
    }
}
