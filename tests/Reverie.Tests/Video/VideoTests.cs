using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Style;
using Reverie.Tests.Infrastructure;
using Reverie.Video;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Video;

/// <summary>
/// Frame-coherent video (issue 22): synthetic videos with known motion, made here, so that the true
/// flow and the occluded pixels are known exactly; the warping error E_warp of Lai et al. 2018 measured
/// on the MP4 a user gets, with flow against <c>--flow none</c>.
/// </summary>
public sealed class VideoTests(ITestOutputHelper output)
{
    const int W = 128, H = 96, Frames = 8;
    const int PanX = 3, PanY = 2, ObjectStep = 4, ObjectSide = 32;

    /// <summary>A synthetic video: its frames, and for each frame t ≥ 1 the true backward flow (t → t−1) and the pixels it is valid on.</summary>
    sealed record Synthetic(string Name, byte[][] Frames, Func<int, int, int, (int Dx, int Dy)?> Source);

    static byte[] Rgb(Tensor image)
    {
        using var scope = NewDisposeScope();
        return image[0].clamp(S(0), S(1)).mul(S(255)).round().to(ScalarType.Byte).permute(1, 2, 0).contiguous().data<byte>().ToArray();
    }

    /// <summary>A window over coffee.png moving (3, 2) pixels a frame: frame t at p shows frame t−1 at p + (3, 2).</summary>
    static Synthetic Pan()
    {
        using var photo = ImageIO.Load(Paths.Sample("coffee.png"));
        var frames = Enumerable.Range(0, Frames).Select(t =>
        {
            using var crop = photo[.., .., (200 + PanY * t)..(200 + PanY * t + H), (250 + PanX * t)..(250 + PanX * t + W)];
            return Rgb(crop);
        }).ToArray();
        return new Synthetic("pan", frames, (t, x, y) => x + PanX < W && y + PanY < H ? (PanX, PanY) : null);
    }

    /// <summary>A 32-pixel square of astronaut.png moving 4 pixels a frame to the right over a still crop of coffee.png; the background it uncovers has no source.</summary>
    static Synthetic MovingObject()
    {
        using var photo = ImageIO.Load(Paths.Sample("coffee.png"));
        using var astronaut = ImageIO.Load(Paths.Sample("astronaut.png"));
        using var background = photo[.., .., 200..(200 + H), 250..(250 + W)].clone();
        using var patch = ImageIO.Resize(astronaut, ObjectSide, ObjectSide);
        const int y0 = 32;
        int X0(int t) => 16 + ObjectStep * t;
        var frames = Enumerable.Range(0, Frames).Select(t =>
        {
            using var f = background.clone();
            f[.., .., y0..(y0 + ObjectSide), X0(t)..(X0(t) + ObjectSide)] = patch;
            return Rgb(f);
        }).ToArray();
        bool In(int t, int x, int y) => x >= X0(t) && x < X0(t) + ObjectSide && y >= y0 && y < y0 + ObjectSide;
        return new Synthetic("moving object", frames, (t, x, y) => In(t, x, y) ? (-ObjectStep, 0) : In(t - 1, x, y) ? null : (0, 0));
    }

    /// <summary>Writes frames as a lossless video (FFV1 in Matroska, 8 frames a second) with a second of 440 Hz sound.</summary>
    static string WriteVideo(TempDir tmp, string name, byte[][] frames)
    {
        string path = tmp.File(name + ".mkv"), raw = tmp.File(name + ".rgb");
        File.WriteAllBytes(raw, frames.SelectMany(f => f).ToArray());
        var (code, err) = Run("ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{W}x{H}", "-r", "8", "-i", raw,
            "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-map", "0:v", "-map", "1:a", "-c:v", "ffv1", "-c:a", "pcm_s16le", path);
        Assert.True(code == 0, err);
        return path;
    }

    static (int Code, string Err) Run(string tool, params string[] args)
    {
        var (code, _, err) = Tool.Run(tool, args);
        return (code, err);
    }

    /// <summary>
    /// E_warp (Lai et al. 2018): the mean squared difference, on pixels with a true source, between each
    /// frame and the previous frame moved along the true motion (0..1 units), averaged over frame pairs.
    /// </summary>
    static double WarpError(IReadOnlyList<byte[]> frames, Synthetic video)
    {
        double sum = 0;
        for (int t = 1; t < frames.Count; t++)
        {
            double err = 0; long n = 0;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    if (video.Source(t, x, y) is not var (dx, dy)) continue;
                    int sx = x + dx, sy = y + dy;
                    if (sx < 0 || sy < 0 || sx >= W || sy >= H) continue;
                    for (int ch = 0; ch < 3; ch++)
                    {
                        double d = (frames[t][(y * W + x) * 3 + ch] - frames[t - 1][(sy * W + sx) * 3 + ch]) / 255.0;
                        err += d * d;
                    }
                    n += 3;
                }
            sum += err / n;
        }
        return sum / (frames.Count - 1);
    }

    static async Task<JobResult> RunJob<T>(IJob job, T options, string outPath, CancellationToken cancel = default, IProgress<JobEvent>? events = null) where T : JobOptions
    {
        var context = new JobContext { Output = outPath, Recipe = JobCatalog.RecipeFor(job, options), Cancel = cancel, Events = events };
        return await job.RunAsync(options, context);
    }

    static DreamJobOptions Dream(string input, FlowMethod flow) => new()
    {
        Input = input, Model = Paths.GoogLeNet, Dream = new DreamOptions { Octaves = 2, Steps = 5 }, Video = new VideoOptions { Flow = VideoOptions.Name(flow) },
    };

    [Fact]
    public void TheFlowOfAPannedVideoIsTheTrueMotionWithinHalfAPixel()
    {
        using var tmp = Paths.Temp();
        var pan = Pan();
        string path = WriteVideo(tmp, "pan", pan.Frames);
        var frames = Ffmpeg.ReadFrames(path, W, H).ToList();
        Assert.Equal(Frames, frames.Count);
        const int border = 16;
        for (int t = 1; t < Frames; t++)
        {
            using var flow = OpticalFlow.Between(frames[t], frames[t - 1], W, H);
            using var inner = flow[.., .., border..(H - border), border..(W - border)];
            using var error = (inner - tensor(new float[] { PanX, PanY }).view(1, 2, 1, 1)).square().sum([1]).sqrt();
            double within = error.lt(S(0.5)).to(ScalarType.Float32).mean().item<float>();
            output.WriteLine($"frames {t - 1}→{t}: {100 * within:0.0}% of pixels within 0.5 px, median error {error.median().item<float>():0.000} px");
            Assert.True(within >= 0.95, $"frames {t - 1}→{t}: only {100 * within:0.0}% within 0.5 px");
        }
    }

    /// <summary>
    /// OpenCV's sparse-to-dense interpolator crashes the process (a segmentation fault) when it gets fewer
    /// matches than neighbours, and throws when it gets none: small frames, flat frames and ffmpeg's test
    /// pattern at 96×64 (which crashed before the grid was fitted to the frame) all get a finite flow.
    /// </summary>
    [Theory]
    [InlineData("testsrc=size=96x64:rate=4")]
    [InlineData("testsrc=size=16x16:rate=4")]
    [InlineData("testsrc=size=200x30:rate=4")]
    [InlineData("color=black:size=128x96:rate=4")]
    [InlineData("color=gray:size=64x48:rate=4")]
    public void SmallAndFlatFramesGetAFiniteFlow(string source)
    {
        using var tmp = Paths.Temp();
        string path = tmp.File("v.mp4");
        Assert.Equal(0, Run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "3", "-pix_fmt", "yuv444p", path).Code);
        var info = Ffmpeg.Probe(path);
        var frames = Ffmpeg.ReadFrames(path, info.Width, info.Height).ToList();
        Assert.Equal(3, frames.Count);
        foreach (var method in new[] { FlowMethod.SparseToDense, FlowMethod.Farneback })
            for (int t = 1; t < frames.Count; t++)
            {
                using var flow = OpticalFlow.Between(frames[t], frames[t - 1], info.Width, info.Height, method);
                Assert.Equal(new long[] { 1, 2, info.Height, info.Width }, flow.shape);
                Assert.True(flow.isfinite().all().item<bool>(), $"{source}, {method}: flow not finite");
            }
    }

    /// <summary>
    /// Runs a job on both synthetic videos with flow and without, and checks that the flow lowers the
    /// output's E_warp by at least 40%; <paramref name="run"/> gets the input, the flow and the output path.
    /// </summary>
    async Task FlowLowersTheWarpingError(string what, TempDir tmp, Func<string, FlowMethod, string, Task<JobResult>> run)
    {
        foreach (var video in new[] { Pan(), MovingObject() })
        {
            string input = WriteVideo(tmp, video.Name.Replace(' ', '-'), video.Frames);
            var errors = new Dictionary<FlowMethod, double>();
            foreach (var flow in new[] { FlowMethod.SparseToDense, FlowMethod.None })
            {
                string outPath = tmp.File($"{video.Name.Replace(' ', '-')}-{flow}.mp4");
                Assert.False((await run(input, flow, outPath)).Interrupted);
                errors[flow] = WarpError(Ffmpeg.ReadFrames(outPath, W, H).ToList(), video);
            }
            double reduction = 1 - errors[FlowMethod.SparseToDense] / errors[FlowMethod.None];
            output.WriteLine($"{what}, {video.Name}: E_warp input {WarpError(video.Frames, video):0.00000}, none {errors[FlowMethod.None]:0.00000}, flow {errors[FlowMethod.SparseToDense]:0.00000}: {100 * reduction:0}% lower");
            Assert.True(reduction >= 0.4, $"{what}, {video.Name}: flow lowers E_warp by only {100 * reduction:0}%");
        }
    }

    [Fact]
    public async Task DreamingWithFlowCutsTheWarpingErrorByMoreThan40Percent()
    {
        using var tmp = Paths.Temp();
        await FlowLowersTheWarpingError("dream", tmp, (input, flow, outPath) => RunJob(new DreamJob(), Dream(input, flow), outPath));
    }

    [Fact]
    public async Task StylizingWithFlowCutsTheWarpingErrorByMoreThan40Percent()
    {
        using var tmp = Paths.Temp();
        // A seeded, untrained style network: its strided layers answer a shift of the picture with a different texture, which is flicker.
        string net = tmp.File("net.onnx");
        random.manual_seed(4);
        using (var transformer = new TransformerNet()) File.WriteAllBytes(net, transformer.ToOnnx());
        await FlowLowersTheWarpingError("stylize", tmp, (input, flow, outPath) =>
            RunJob(new StylizeJob(), new StylizeJobOptions { Model = net, Image = input, Video = new VideoOptions { Flow = VideoOptions.Name(flow) } }, outPath));
    }

    [Fact]
    public async Task GatysStylesAVideoFrameByFrameAndFlowLowersTheWarpingError()
    {
        using var tmp = Paths.Temp();
        string style = Path.Combine(Paths.RepoRoot, "docs", "gallery", "chelsea-inception_4c-output.jpg");
        await FlowLowersTheWarpingError("style", tmp, (input, flow, outPath) => RunJob(new StyleJob(), new StyleJobOptions
        {
            Model = Paths.GoogLeNet, Content = input, Styles = [new StyleImage(style)],
            Style = new StyleOptions { Size = W, Steps = 10 }, Video = new VideoOptions { Flow = VideoOptions.Name(flow) },
        }, outPath));
    }

    [Fact]
    public async Task AnInterruptedVideoResumesToTheSameFileWithItsAudioAndFrameCount()
    {
        using var tmp = Paths.Temp();
        string input = WriteVideo(tmp, "pan", Pan().Frames);
        string whole = tmp.File("whole.mp4"), resumed = tmp.File("resumed.mp4");
        Assert.False((await RunJob(new DreamJob(), Dream(input, FlowMethod.SparseToDense), whole)).Interrupted);

        // Cancelled while dreaming the fourth frame: three frames are kept, no MP4 is written.
        using var cts = new CancellationTokenSource();
        var first = await RunJob(new DreamJob(), Dream(input, FlowMethod.SparseToDense), resumed, cts.Token,
            new Sink(e => { if (e.Stage.StartsWith("frame 4/", StringComparison.Ordinal)) cts.Cancel(); }));
        Assert.True(first.Interrupted);
        Assert.False(File.Exists(resumed));
        string folder = CoherentVideo.FramesFolder(resumed);
        Assert.Equal(3, Directory.GetFiles(folder, "*.png").Length);
        output.WriteLine(first.Summary);

        var notes = new List<string>();
        var second = await RunJob(new DreamJob(), Dream(input, FlowMethod.SparseToDense), resumed, events: new Sink(e => { if (e.Message is { } m) notes.Add(m); }));
        Assert.False(second.Interrupted);
        Assert.Contains(notes, n => n.Contains("resuming after the 3 frames"));
        Assert.False(Directory.Exists(folder));
        output.WriteLine(second.Summary);
        Assert.True(File.ReadAllBytes(whole).AsSpan().SequenceEqual(File.ReadAllBytes(resumed)), "the resumed video differs from the uninterrupted one");

        // What ffprobe says: the frame count, the frame rate and an audio stream of about a second.
        var inInfo = Ffmpeg.Probe(input);
        var outInfo = Ffmpeg.Probe(whole);
        output.WriteLine($"input {inInfo}; output {outInfo}");
        Assert.Equal(inInfo.Frames, outInfo.Frames);
        Assert.Equal(inInfo.FrameRate, outInfo.FrameRate);
        Assert.True(outInfo.HasAudio);
        double seconds = double.Parse(Probe(whole, "a:0", "duration"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(seconds, 0.9, 1.1);
    }

    /// <summary>
    /// Issue 36, defect 19: a resumed video checks each saved frame's size (from its PNG header) against the
    /// film's; a frame of another size (another run's, or a user's file) stopped the whole film coming out
    /// at that size on 4884109. Now it is one sentence naming the frame, and nothing is written.
    /// </summary>
    [Fact]
    public async Task P19_AResumedVideoRefusesASavedFrameOfAnotherSize()
    {
        using var tmp = Paths.Temp();
        string input = WriteVideo(tmp, "pan", Pan().Frames), output = tmp.File("resumed.mp4");
        var options = Dream(input, FlowMethod.None) with { Model = "textures", Dream = new DreamOptions { Octaves = 1, Steps = 1 } };
        using var cts = new CancellationTokenSource();
        var first = await RunJob(new DreamJob(), options, output, cts.Token,
            new Sink(e => { if (e.Stage.StartsWith("frame 3/", StringComparison.Ordinal)) cts.Cancel(); }));
        Assert.True(first.Interrupted);
        string folder = CoherentVideo.FramesFolder(output);
        var saved = Directory.GetFiles(folder, "*.png").Order().ToArray();
        Assert.InRange(saved.Length, 2, 3); // cancelled while on the third frame: the frames before it (and it, if it was done) kept
        using (var scope = NewDisposeScope()) ImageIO.Save(zeros(1, 3, 20, 30), saved[0]); // 30x20, not the film's size
        var e = await Assert.ThrowsAsync<BadInputException>(() => RunJob(new DreamJob(), options, output));
        Assert.Contains("is 30x20, but this film's frames are", e.Message);
        Assert.False(File.Exists(output));
    }

    static string Probe(string path, string stream, string entry) =>
        Tool.Run("ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", $"stream={entry}", "-of", "csv=p=0", path).Out.Trim();

    [Fact]
    public void BadVideoInputIsOneSentenceWithExit2AndNoPartialOutput()
    {
        using var cli = new CliHost();
        using var tmp = Paths.Temp();
        string video = WriteVideo(tmp, "pan", Pan().Frames);
        string audioOnly = tmp.File("sound.mkv");
        Assert.Equal(0, Run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "pcm_s16le", audioOnly).Code);
        string garbage = tmp.File("garbage.mp4");
        File.WriteAllBytes(garbage, Enumerable.Range(0, 5000).Select(i => (byte)(i * 37)).ToArray());
        string outPath = tmp.File("out.mp4");
        string dotnet = Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, "dotnet")).First(File.Exists);
        string dll = Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll");
        var cases = new (string Why, string[] Args, string Expected)[]
        {
            ("no video stream", ["dream", audioOnly, "-o", outPath], "has no video stream"),
            ("unreadable", ["dream", garbage, "-o", outPath], "is not a video ffmpeg can read"),
            ("blend above 1", ["dream", video, "--blend", "1.5", "-o", outPath], "--blend must be from 0 to 1"),
            ("blend NaN", ["stylize", video, "--net", Paths.GoogLeNet, "--blend", "NaN", "-o", outPath], "--blend must be a finite number"),
            ("unknown flow", ["dream", video, "--flow", "dis", "-o", outPath], "--flow must be sparse-to-dense, farneback or none"),
            ("not .mp4", ["dream", video, "-o", tmp.File("out.png")], "must be .mp4"),
        };
        foreach (var (why, args, expected) in cases)
        {
            var (code, stdout, stderr) = cli.Run(args);
            output.WriteLine($"{why}: exit {code}: {stderr.Trim()}");
            Assert.True(code == 2, $"{why}: exit {code}\n{stdout}{stderr}");
            Assert.Contains(expected, stderr);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.False(File.Exists(outPath), why);
            Assert.False(Directory.Exists(CoherentVideo.FramesFolder(outPath)), why);
        }
        // No ffmpeg on the PATH.
        var (c2, o2, e2) = cli.Run("env", [$"PATH={tmp.Path}", dotnet, dll, "dream", video, "-m", Paths.GoogLeNet, "-o", outPath]);
        output.WriteLine($"no ffmpeg: exit {c2}: {e2.Trim()}");
        Assert.True(c2 == 2, o2 + e2);
        Assert.Contains("need ffmpeg, which is not installed", e2);
        Assert.False(File.Exists(outPath));
    }

    sealed class Sink(Action<JobEvent> a) : IProgress<JobEvent>
    {
        public void Report(JobEvent value) => a(value);
    }
}
