using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Reverie.Imaging;
using Reverie.Jobs;
using static TorchSharp.torch;

namespace Reverie.Video;

/// <summary>How consecutive frames of a video are tied together.</summary>
internal enum FlowMethod
{
    /// <summary>OpenCV's sparse-to-dense flow between input frames (accurate on textureless areas too): the previous output is warped along it and blended in where it is consistent.</summary>
    SparseToDense,
    /// <summary>OpenCV's Farneback flow: 3–5× faster, wrong on textureless areas (which the consistency test then leaves out).</summary>
    Farneback,
    /// <summary>No flow: every frame is done on its own (the flickering baseline).</summary>
    None,
}

/// <summary>How a video is processed frame by frame (for <c>dream</c> and <c>stylize</c> on a video).</summary>
public sealed record VideoOptions
{
    /// <summary>The optical flow that carries the previous output into the next frame: <c>sparse-to-dense</c> (OpenCV's, accurate on textureless areas too), <c>farneback</c> (3–5× faster, wrong on textureless areas) or <c>none</c> (every frame on its own).</summary>
    public string Flow { get; init; } = "sparse-to-dense";
    /// <summary>How much of the warped previous output a frame keeps where the flow is consistent, 0..1 (0: none).</summary>
    public double Blend { get; init; } = 0.6;
    /// <summary>
    /// Dream each frame from the frame blended with the previous dream (DeepDreamVideo's way: the
    /// hallucinations grow from frame to frame, and keep changing where nothing moves), instead of from
    /// the frame itself; either way the dream is then blended with the warped previous dream.
    /// </summary>
    public bool DreamFromPrevious { get; init; }

    /// <summary><see cref="Flow"/> parsed.</summary>
    [JsonIgnore]
    internal FlowMethod Method => Flow switch
    {
        "sparse-to-dense" => FlowMethod.SparseToDense,
        "farneback" => FlowMethod.Farneback,
        "none" => FlowMethod.None,
        _ => throw new BadInputException($"--flow must be sparse-to-dense, farneback or none; got '{BadInputException.Shown(Flow)}'."),
    };

    /// <summary>The name of a flow method, as <see cref="Flow"/> takes it.</summary>
    internal static string Name(FlowMethod method) => method switch
    {
        FlowMethod.SparseToDense => "sparse-to-dense",
        FlowMethod.Farneback => "farneback",
        _ => "none",
    };

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        _ = Method;
        Check.Finite(("--blend", Blend));
        if (Blend is < 0 or > 1) throw new BadInputException($"--blend must be from 0 to 1; got {Blend.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
    }
}

/// <summary>
/// The previous frame's output carried into the current frame: warped along the flow, with the
/// share of it to keep per pixel (the blend where the flow is consistent, 0 where it is not).
/// </summary>
internal sealed class FrameLink(Tensor warped, Tensor weight) : IDisposable
{
    /// <summary>The previous output warped onto the current frame [1,3,H,W].</summary>
    public Tensor Warped { get; } = warped;
    /// <summary>The share of <see cref="Warped"/> kept, per pixel [1,1,H,W].</summary>
    public Tensor Weight { get; } = weight;

    /// <summary><paramref name="image"/> with the warped previous output blended in.</summary>
    public Tensor Blend(Tensor image) => (Weight * Warped + (S(1) - Weight) * image).detach();

    /// <inheritdoc/>
    public void Dispose() { Warped.Dispose(); Weight.Dispose(); }
}

/// <summary>What a video run did.</summary>
/// <param name="Frames">Frames in the output.</param>
/// <param name="Resumed">Frames found done from an earlier, interrupted run.</param>
/// <param name="Width">Frame width.</param>
/// <param name="Height">Frame height.</param>
/// <param name="FlowSeconds">Time spent on optical flow.</param>
/// <param name="FrameSeconds">Time spent on the frames themselves (dreaming, stylizing).</param>
/// <param name="Interrupted">Whether cancellation stopped it before the last frame.</param>
internal sealed record VideoRun(int Frames, int Resumed, int Width, int Height, double FlowSeconds, double FrameSeconds, bool Interrupted)
{
    /// <summary>What the recipe of a video run records: <paramref name="model"/> and <paramref name="objective"/> where the method has them, and the times.</summary>
    public VideoResults Results(string? model, string? objective, string flow, double seconds) =>
        new(model, objective, Width, Height, Frames, flow, FlowSeconds, FrameSeconds, Math.Round(seconds, 2));
}

/// <summary>What a dreamed, stylized or styled video measured.</summary>
/// <param name="Model">The network (dream's model, style's loss network); absent for a style network.</param>
/// <param name="Objective">A dream's objective, as the language writes it.</param>
/// <param name="Width">Frame width.</param>
/// <param name="Height">Frame height.</param>
/// <param name="Frames">Frames in the video.</param>
/// <param name="Flow">The optical flow used (none: frame by frame).</param>
/// <param name="FlowSeconds">Time spent on optical flow.</param>
/// <param name="FrameSeconds">Time spent on the frames themselves.</param>
/// <param name="Seconds">Time taken in all.</param>
internal sealed record VideoResults(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Model,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Objective,
    int Width, int Height, int Frames, string Flow, double FlowSeconds, double FrameSeconds, double Seconds);

/// <summary>
/// A video done frame by frame, coherently: each frame is decoded, the previous output is warped
/// along the optical flow between the input frames and blended in where the flow is consistent
/// (occlusions excluded), the frame is processed (dreamed, stylized), and the result is written as a
/// numbered PNG atomically into <c>OUT.frames/</c>. An interrupted run leaves those frames, and the
/// same command resumes after them; the finished frames become an H.264 MP4 with the input's audio
/// and frame rate, and the folder is removed.
/// </summary>
internal static class CoherentVideo
{
    /// <summary>The folder of done frames beside an output.</summary>
    public static string FramesFolder(string output) => Path.GetFullPath(output) + ".frames";

    /// <summary>The frame size for a video of <paramref name="info"/>'s size shrunk to <paramref name="maxSize"/> (even sides, for H.264).</summary>
    public static (int Width, int Height) FrameSize(VideoInfo info, int? maxSize)
    {
        double f = maxSize is { } m && Math.Max(info.Width, info.Height) > m ? (double)m / Math.Max(info.Width, info.Height) : 1;
        static int Even(double v) => Math.Max(2, 2 * (int)Math.Round(v / 2));
        return (Even(info.Width * f), Even(info.Height * f));
    }

    /// <summary>Checks the output of a video run before anything starts: an .mp4, ffmpeg present.</summary>
    public static void CheckOutput(JobContext c)
    {
        if (!Path.GetExtension(c.Output).Equals(".mp4", StringComparison.OrdinalIgnoreCase))
            throw new BadInputException($"A video's output must be .mp4; got '{BadInputException.Shown(c.Output)}'.");
        if (!Ffmpeg.Available) throw new BadInputException("Video input and output need ffmpeg, which is not installed (Debian: apt-get install ffmpeg).");
    }

    /// <summary>
    /// Runs <paramref name="process"/> on every frame and writes the MP4. <paramref name="process"/> gets
    /// the frame index, the frame [1,3,H,W] in 0..1 and the link to the previous output (null for the
    /// first frame and with no flow); it returns the output frame, or null when cancelled mid-frame.
    /// </summary>
    public static VideoRun Run(string input, VideoInfo info, VideoOptions v, int? maxSize, JobContext c, Func<int, Tensor, FrameLink?, Tensor?> process)
    {
        var (w, h) = FrameSize(info, maxSize);
        string dir = FramesFolder(c.Output), keyFile = Path.Combine(dir, "run.key");
        string key = RunKey(c, w, h);
        if (Directory.Exists(dir) && !File.Exists(FramePath(dir, 0)) && Directory.GetFiles(dir).All(f => Path.GetFileName(f) == "run.key"))
            Directory.Delete(dir, recursive: true); // a run that failed before its first frame left nothing to resume
        if (Directory.Exists(dir))
        {
            if (!InputFile.IsRegularFile(keyFile) || InputFile.ReadAllText(keyFile, "run key", 1 << 16, confined: false) != key)
                throw new BadInputException($"'{BadInputException.Shown(dir)}' holds frames of another run; delete it, or choose another output.");
        }
        if (File.Exists(dir)) throw new BadInputException($"'{BadInputException.Shown(dir)}' is a file; the frames of a video run go in a folder of that name.");
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            AtomicFile.WriteAllText(keyFile, key);
        }
        int done = 0;
        while (File.Exists(FramePath(dir, done))) done++;
        int total = Math.Max(info.Frames, done);
        if (done > 0) c.Note($"resuming after the {done} frames already in {dir}");

        double flowSeconds = 0, frameSeconds = 0;
        byte[]? previousFrame = null;
        Tensor? previousOutput = null, previousInput = null;
        int index = 0;
        bool interrupted = false;
        try
        {
            foreach (var rgb in Ffmpeg.ReadFrames(input, w, h, c.Cancel))
            {
                int t = index++;
                if (t < done)
                {
                    if (PngSize(FramePath(dir, t)) is var (fw, fh) && (fw != w || fh != h))
                        throw new BadInputException($"'{BadInputException.Shown(FramePath(dir, t), 120)}' is {fw}x{fh}, but this film's frames are {w}x{h}; the saved frames are not this run's. Delete '{BadInputException.Shown(dir, 120)}' to start again.");
                    if (t == done - 1) previousOutput = ImageIO.Load(FramePath(dir, t));
                    previousFrame = rgb;
                    continue;
                }
                if (c.Cancel.IsCancellationRequested) { interrupted = true; break; }
                using var scope = NewDisposeScope();
                // The frame's tensor work without a garbage collection: the frame reader and the progress
                // display allocate on other threads, and TorchSharp's own temporary Scalars (the alpha of
                // 1 in a + b) must not be finalized while libtorch reads them (issue 36: stylize crashed so).
                using var pause = GcPause.Begin();
                var frame = FromRgb(rgb, w, h);
                FrameLink? link = null;
                if (previousOutput is not null && previousFrame is not null && v.Method != FlowMethod.None && v.Blend > 0)
                {
                    var sw = Stopwatch.StartNew();
                    var backward = OpticalFlow.Between(rgb, previousFrame, w, h, v.Method);
                    var forward = OpticalFlow.Between(previousFrame, rgb, w, h, v.Method);
                    var mask = OpticalFlow.Consistent(backward, forward, frame, previousInput ?? FromRgb(previousFrame, w, h));
                    link = new FrameLink(OpticalFlow.Warp(previousOutput, backward), mask * S(v.Blend));
                    flowSeconds += sw.Elapsed.TotalSeconds;
                }
                var timer = Stopwatch.StartNew();
                var output = process(t, frame, link);
                frameSeconds += timer.Elapsed.TotalSeconds;
                if (output is null) { interrupted = true; break; }
                var (rgba, ow, oh) = ImageIO.ToRgba(output);
                if (ow != w || oh != h) throw new ReverieException($"Frame {t + 1} came out {ow}x{oh}, not {w}x{h}.");
                AtomicFile.WriteAllBytes(FramePath(dir, t), ImageIO.Encode(rgba, w, h, SkiaSharp.SKEncodedImageFormat.Png));
                // The next frame starts from the output as saved (8-bit), so that a resumed run, which reads it back, continues identically.
                var saved = ImageIO.FromRgba(rgba, w, h);
                previousOutput?.Dispose();
                previousOutput = saved.MoveToOuterDisposeScope();
                previousFrame = rgb;
                previousInput?.Dispose();
                previousInput = frame.MoveToOuterDisposeScope();
                total = Math.Max(total, t + 1);
                c.Report(new JobEvent { Stage = $"frame {t + 1}/{total}", Step = t + 1, Total = total, Preview = c.PreviewEvery > 0 ? saved : null });
            }
        }
        catch when (!File.Exists(FramePath(dir, 0)))
        {
            Directory.Delete(dir, recursive: true); // nothing to resume: leave nothing behind
            throw;
        }
        finally { previousOutput?.Dispose(); previousInput?.Dispose(); }
        interrupted |= c.Cancel.IsCancellationRequested;
        int frames = 0;
        while (File.Exists(FramePath(dir, frames))) frames++;
        if (frames == 0 && index == 0 && !interrupted) throw new BadInputException($"'{BadInputException.Shown(input)}' has no frames ffmpeg can decode.");
        if (!interrupted)
        {
            Ffmpeg.WriteMp4(Path.Combine(dir, "%06d.png"), info.FrameRate, c.Output, info.HasAudio ? input : null);
            Directory.Delete(dir, recursive: true);
        }
        return new VideoRun(frames, done, w, h, Math.Round(flowSeconds, 2), Math.Round(frameSeconds, 2), interrupted);
    }

    /// <summary>The result of a video job: the MP4 with its recipe beside it, or, interrupted, the frames kept for a resume.</summary>
    internal static JobResult Finish(JobContext c, VideoRun run, object results, int steps)
    {
        if (run.Interrupted)
            return new JobResult([], $"interrupted after {run.Frames} frames; they are kept in {FramesFolder(c.Output)}, and the same command resumes from there", true, results);
        c.Finished(results, steps).SaveBeside(c.Output);
        string resumed = run.Resumed > 0 ? $", {run.Resumed} of them from the earlier run" : "";
        return new JobResult([c.Output], $"{c.Output} ({run.Frames} frames{resumed}, {run.Width}x{run.Height}; flow {run.FlowSeconds:0.0} s, frames {run.FrameSeconds:0.0} s)", false, results);
    }

    /// <summary>A saved frame's size from its PNG header (IHDR), without decoding it; (0, 0) when it is not a PNG.</summary>
    static (int Width, int Height) PngSize(string path)
    {
        var head = new byte[24];
        using (var f = InputFile.OpenRead(path, "saved frame", 1L << 30, confined: false)) f.ReadExactly(head);
        if (head[12] != (byte)'I' || head[13] != (byte)'H') return (0, 0);
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(20)));
    }

    static string FramePath(string dir, int t) => Path.Combine(dir, $"{t:D6}.png");

    /// <summary>
    /// A frame's own result (its dream, its stylized picture) rounded to 8 bits, as a batch item saves
    /// it, then blended with the warped previous output: so a video whose frames were made apart
    /// (<c>reverie batch plan video</c>) is the same file as one made here in one go.
    /// </summary>
    public static Tensor Join(Tensor own, FrameLink? link)
    {
        var (rgba, w, h) = ImageIO.ToRgba(own);
        var saved = ImageIO.FromRgba(rgba, w, h);
        if (link is null) return saved;
        using (saved) return link.Blend(saved);
    }

    /// <summary>Packed RGB bytes as an image [1,3,H,W] in 0..1.</summary>
    public static Tensor FromRgb(byte[] rgb, int width, int height)
    {
        using var scope = NewDisposeScope();
        return tensor(rgb, dtype: ScalarType.Byte).reshape(height, width, 3).permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float32).div_(S(255f)).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>What makes frames of one run reusable by another: the options, the inputs' contents and the frame size.</summary>
    static string RunKey(JobContext c, int w, int h)
    {
        var text = new StringBuilder(c.Recipe.Options?.ToJsonString() ?? "").Append('|').Append(w).Append('x').Append(h);
        foreach (var (file, hash) in c.Recipe.Inputs.OrderBy(p => p.Key, StringComparer.Ordinal)) text.Append('|').Append(file).Append('=').Append(hash);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
