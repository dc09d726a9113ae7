using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Trust;

/// <summary>
/// Issue 36, defect 10: a job's peak memory is estimated from its options before any work, and a job
/// above the budget (three quarters of the machine's memory, or --max-memory) is refused in one
/// sentence with the estimate. On 4884109 each of these runs grew to 5-6 GB within 13 s.
/// </summary>
public sealed class MemoryBudgetTests(ITestOutputHelper output) : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _tmp = new();
    string Photo => _photo ??= Paths.SmallPhoto(_tmp.File("in.png"));
    string? _photo;


    public void Dispose() { _cli.Dispose(); _tmp.Dispose(); }

    [Fact]
    public void P10_AbsurdSizesAreRefusedBeforeAnyWorkWithTheirEstimate()
    {
        // A 16000x16000 plain PNG (256 megapixels, the most an image may have): 250 kB on disk.
        string huge = _tmp.File("huge.png");
        File.WriteAllBytes(huge, InputFileTests.GreyPng(16000, interlaced: false));
        string v = _tmp.File("v.png"), a = _tmp.File("a.png"), s = _tmp.File("s.png"), f = _tmp.File("fool"), b = _tmp.File("b.json"), d = _tmp.File("d.png");
        var cases = new (string[] Args, string What, string Output)[]
        {
            (["visualize", "-m", "textures", "-O", "conv6:0", "--batch", "256", "--size", "2048", "-o", v], "256 images of 2048x2048 through textures", v),
            (["atlas", "-m", "textures", "--layer", "conv6", "--size", "2048", "-o", a], "8 images of 2048x2048", a),
            (["style", Photo, Photo, "-m", "textures", "--size", "4096", "-o", s], "a styled image of 4096x4096", s),
            (["fool", "-m", "textures", "--class", "0", "--population", "10000", "-o", f], "a population of 10000 images", f),
            (["attack", "benchmark", "-m", "textures", "--data", "textures", "--n", "10000", "--batch", "10000", "-o", b], "batches of 10000 images", b),
            // Fixed budget: the refusal must not depend on the machine's memory (the estimate is about 30 GB).
            (["dream", huge, "-m", "textures", "--max-memory", "16G", "-o", d], "a 16000x16000 photo in tiles of 512", d),
        };
        foreach (var (args, what, output) in cases)
        {
            var r = _cli.Run(args);
            Cli.HostileInputTests.AssertRefused(r, "would need about");
            Assert.Contains(what, r.Err);
            Assert.Contains("--max-memory", r.Err);
            Assert.False(File.Exists(output) || Directory.Exists(output), $"{args[0]} wrote {output}");
        }
    }

    [Fact]
    public void P10_MaxMemorySetsTheBudgetAndIsCheckedItself()
    {
        string o = _tmp.File("v.png");
        string[] run = ["visualize", "-m", "textures", "-O", "conv6:0", "--batch", "4", "--size", "256", "--steps", "1", "-o", o];
        // 4 images of 256x256 through the small textures network: about 0.6 GB.
        var refused = _cli.Run([.. run, "--max-memory", "512M"]);
        Cli.HostileInputTests.AssertRefused(refused, "more than its budget of 512 MB");
        Assert.False(File.Exists(o));
        var env = _cli.Run("env", ["REVERIE_MAX_MEMORY=512M", "dotnet", Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), .. run]);
        Assert.Equal(2, env.Code);
        Assert.Contains("budget of 512 MB", env.Err);
        var ok = _cli.Run([.. run, "--max-memory", "2G"]);
        Assert.True(ok.Code == 0, ok.Err);
        Assert.True(File.Exists(o));
        foreach (var bad in new[] { "lots", "-1G", "1K", "NaN", "9999999T" })
            Cli.HostileInputTests.AssertRefused(_cli.Run([.. run, "--max-memory", bad]), "--max-memory takes a size");
    }

    [Fact]
    public void SizesParseInPowersOf1024()
    {
        Assert.Equal(8L << 30, MemoryBudget.Parse("8G"));
        Assert.Equal(8L << 30, MemoryBudget.Parse("8gb"));
        Assert.Equal(512L << 20, MemoryBudget.Parse("512M"));
        Assert.Equal(1536L << 20, MemoryBudget.Parse("1.5G"));
        Assert.Equal(1L << 40, MemoryBudget.Parse("1T"));
        Assert.Equal(100L << 20, MemoryBudget.Parse("104857600"));
        Assert.Equal("1.5 GB", MemoryBudget.Show(1536L << 20));
        Assert.Equal("640 MB", MemoryBudget.Show(640L << 20));
        Assert.Equal("4.1 TB", MemoryBudget.Show(4192L << 30));
    }

    /// <summary>
    /// The estimate is an upper bound of what a run really takes, and not a loose one: a visualization of
    /// 4 images of 384x384 through BVLC GoogLeNet, measured as the child process's peak resident memory
    /// above the same run at 32x32 (which holds the runtime, libtorch and the network).
    /// </summary>
    [Fact]
    public void TheEstimateBoundsTheMeasuredPeakOfAVisualization()
    {
        _cli.WithGoogLeNet();
        (int Code, string Out, string Err, long PeakBytes) Run(int batch, int size) =>
            _cli.RunMeasured("visualize", "-m", "googlenet", "-O", "inception_4a/output:0", "--batch", batch.ToString(), "--size", size.ToString(), "--steps", "3", "-o", _tmp.File($"g{size}.png"));
        var small = Run(1, 32);
        var large = Run(4, 384);
        Assert.True(small.Code == 0 && large.Code == 0, small.Err + large.Err);
        long grew = large.PeakBytes - small.PeakBytes;
        long estimated = MemoryEstimate.Optimized("googlenet", 4, 384).Bytes - MemoryEstimate.Optimized("googlenet", 1, 32).Bytes;
        output.WriteLine($"visualize 4x384² over 1x32² through googlenet: peak grew {grew >> 20} MB, estimated {estimated >> 20} MB");
        Assert.True(grew <= estimated, $"the run grew {grew >> 20} MB, more than the {estimated >> 20} MB estimated");
        Assert.True(grew >= estimated / 3, $"the run grew {grew >> 20} MB, under a third of the {estimated >> 20} MB estimated");
    }
}
