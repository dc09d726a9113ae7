using System.Text.Json;
using Reverie.Objectives;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Dreaming;

/// <summary>
/// Reverie's DeepDream on the ONNX export of torchvision's GoogLeNet against a PyTorch
/// implementation of the same algorithm on the model itself (bench/scripts/pytorch_deepdream.py),
/// with the same jitter offsets: PSNR ≥ 40 dB at 224 and 512 px, 4 octaves × 10 steps.
/// </summary>
public class DreamParityTests(ITestOutputHelper output)
{
    internal static readonly InputSpec TorchvisionSpec = new() { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };

    internal static (Tensor Reverie, Tensor Reference, double ReverieSeconds, double ReferenceSeconds) Run(int size, TempDir tmp, DreamOptions options,
        bool float64 = false, string sample = "coffee.png", string? inputOverride = null)
    {
        string export = TorchvisionExports.Get("googlenet", 13);
        string inPath = inputOverride ?? tmp.File($"in{size}.png");
        if (inputOverride is null)
        {
            using var photo = ImageIO.Load(Paths.Sample(sample));
            using var input = ImageIO.Resize(photo, size, size);
            ImageIO.Save(input, inPath);
        }
        var x = ImageIO.Load(inPath);
        using var net = OnnxNetwork.Load(export, input: TorchvisionSpec);
        if (float64) { net.To(CPU, ScalarType.Float64); x = x.to(ScalarType.Float64); }
        var dream = new DeepDream(net, new LayerL2(net.ResolveLayer("inception4c")), options);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var mine = dream.Run(x);
        double mineSeconds = sw.Elapsed.TotalSeconds;
        string offsets = tmp.File("offsets.json");
        File.WriteAllText(offsets, JsonSerializer.Serialize(dream.Jitter.Drawn.Select(o => new[] { o.Dx, o.Dy })));
        string outPath = tmp.File("ref.f32");
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "bench", "scripts", "pytorch_deepdream.py"), inPath, outPath, offsets,
            "--export", export, "--octaves", options.Octaves.ToString(inv), "--scale", options.OctaveScale.ToString(inv),
            "--steps", options.Steps.ToString(inv), "--step-size", options.StepSize.ToString(inv), "--threads", "2", "--dtype", float64 ? "float64" : "float32");
        Assert.True(code == 0, text);
        var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(outPath)).ToArray();
        var reference = tensor(floats).reshape(1, 3, size, size);
        double refSeconds = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement.GetProperty("seconds").GetDouble();
        return (mine.to(ScalarType.Float32), reference, mineSeconds, refSeconds);
    }

    /// <summary>
    /// The whole schedule (pyramid, detail, jitter, steps) in float64 on both sides, with
    /// bit-identical weights: rounding noise is too small to flip a ReLU or a max-pool, so the two
    /// implementations of the algorithm must agree.
    /// </summary>
    [Fact]
    public void MatchesPyTorchReferenceInFloat64At224() => Float64(224);

    /// <summary>
    /// The same schedule at 512 px (its four octaves at 187, 261, 366 and 512 px) with 4 steps an octave
    /// instead of 10: the pyramid, the detail carried between octaves and the jitter are the same code
    /// at every step count, and the steps are where the time goes (PyTorch took about 100 s in float64
    /// for 10 steps on two cores; issue 37 sized this test to what it asserts).
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void MatchesPyTorchReferenceInFloat64At512() => Float64(512, steps: 4);

    void Float64(int size, int steps = 10)
    {
        using var tmp = Paths.Temp();
        var (mine, reference, ms, rs) = Run(size, tmp, new DreamOptions { Tile = 0, Steps = steps }, float64: true);
        double psnr = Filters.Psnr(mine, reference);
        double change = Filters.Psnr(mine, ImageIO.Load(tmp.File($"in{size}.png")));
        output.WriteLine($"float64 {size}px: PSNR vs PyTorch {psnr:0.0} dB (the dream's own change: {change:0.0} dB vs the input); Reverie {ms:0.00} s, PyTorch {rs:0.00} s");
        Assert.True(change < 30, $"the dream barely changed the image (PSNR {change:0.0} dB vs the input)");
        Assert.True(psnr >= 40, $"PSNR {psnr:0.0} dB against the PyTorch reference");
    }

    /// <summary>
    /// In float32 DeepDream is chaotic: PyTorch against itself, with one input value moved by
    /// 1/255, already ends ~27 dB apart after 4 octaves x 10 steps. Reverie against PyTorch must
    /// be at least as close as that (within 1 dB), and a single step must agree closely.
    /// </summary>
    [Fact]
    public void MatchesPyTorchReferenceInFloat32AsCloselyAsPyTorchMatchesItself()
    {
        using var tmp = Paths.Temp();
        var options = new DreamOptions { Tile = 0 };
        var (mine, reference, _, _) = Run(224, tmp, options);
        // PyTorch against PyTorch on an input one step of one value away.
        var x = ImageIO.Load(tmp.File("in224.png"));
        float v = x[0, 0, 100, 100].item<float>();
        x[0, 0, 100, 100] = tensor(v < 0.5f ? v + 1f / 255 : v - 1f / 255);
        string nudged = tmp.File("nudged.png");
        ImageIO.Save(x, nudged);
        using var tmp2 = Paths.Temp();
        var (_, referenceNudged, _, _) = Run(224, tmp2, options, inputOverride: nudged);
        double ours = Filters.Psnr(mine, reference), chaos = Filters.Psnr(reference, referenceNudged);
        // One step from the same image.
        using var tmp3 = Paths.Temp();
        var (mine1, reference1, _, _) = Run(224, tmp3, new DreamOptions { Tile = 0, Octaves = 1, Steps = 1 });
        var input = ImageIO.Load(tmp3.File("in224.png"));
        double stepPsnr = Filters.Psnr(mine1 - input, reference1 - input), stepSize = Filters.Psnr(mine1, input);
        output.WriteLine($"float32 224px: Reverie vs PyTorch {ours:0.0} dB; PyTorch vs PyTorch with one value nudged {chaos:0.0} dB; one step: update difference {stepPsnr:0.0} dB for an update of {stepSize:0.0} dB");
        Assert.True(ours >= chaos - 1, $"Reverie vs PyTorch {ours:0.0} dB is further apart than PyTorch's own sensitivity {chaos:0.0} dB");
        Assert.True(stepPsnr >= stepSize + 20, $"a single step differs by {stepPsnr:0.0} dB for an update of {stepSize:0.0} dB");
    }
}
