using Reverie.Imaging;
using Reverie.Style;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Style;

/// <summary>
/// The fast style network's upsampling (issue 22): nearest ×2 then a convolution, against the old
/// transposed convolutions whose uneven overlap prints a checkerboard (Odena et al. 2016).
/// </summary>
public sealed class CheckerboardTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    static string StylePath => Path.Combine(Paths.RepoRoot, "docs", "gallery", "chelsea-inception_4c-output.jpg");

    [Fact]
    public void TheMetricSeesAGridAndNotAPhoto()
    {
        using var photo = ImageIO.Load(Paths.Sample("coffee.png"), 256);
        double clean = Checkerboard.Energy(photo);
        // The same photo with a faint period-2 grid of ±2 levels added.
        using var grid = (arange(S(photo.shape[2])).view(-1, 1).remainder(S(2)) + arange(S(photo.shape[3])).view(1, -1).remainder(S(2))).remainder(S(2)) * S(4.0 / 255) - S(2.0 / 255);
        using var gridded = (photo + grid).clamp(S(0), S(1));
        double withGrid = Checkerboard.Energy(gridded);
        output.WriteLine($"checkerboard energy: photo {clean:0.00}, with a ±2-level grid {withGrid:0.00}");
        Assert.InRange(clean, 0.2, 3);
        Assert.True(withGrid > 10 * clean, $"{withGrid:0.00} vs {clean:0.00}");
    }

    [Fact]
    public void TheNewUpsamplingPrintsFiveTimesLessCheckerboardThanTransposedConvolutions()
    {
        // Both layouts trained the same way (same seed, data, loss network, steps), then applied to the same photo.
        var photos = new[] { "coffee.png", "chelsea.png", "rocket.jpg" }.Select(n => ImageIO.Load(Paths.Sample(n), 128)).ToList();
        using var style = ImageIO.Load(StylePath, 128);
        using var test = ImageIO.Load(Paths.Sample("astronaut.png"), 256);
        var energies = new Dictionary<bool, double>();
        foreach (bool transposed in new[] { true, false })
        {
            var options = new FastStyleOptions
            {
                Size = 64, Epochs = 4, Batch = 2, CropsPerImage = 4, StyleWeight = 5, Seed = 1, TransposedUpsampling = transposed,
                ContentLayers = ["inception_4a/output"], StyleLayers = ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output"],
            };
            var trainer = new FastStyleTrainer(model.Net, style, photos, options);
            trainer.Run();
            Assert.Equal(0, trainer.Skipped);
            using var stylizer = new Stylizer(trainer.Net);
            using var styled = stylizer.Apply(test);
            energies[transposed] = Checkerboard.Energy(styled);
            // The ONNX file gives the same picture (the new layout exports Resize).
            string onnx = Path.Combine(Path.GetTempPath(), $"reverie-checker-{Guid.NewGuid():N}.onnx");
            try
            {
                File.WriteAllBytes(onnx, trainer.Net.ToOnnx());
                using var loaded = Stylizer.Load(onnx);
                using var again = loaded.Apply(test);
                double diff = (again - styled).abs().max().item<float>();
                output.WriteLine($"{(transposed ? "transposed" : "upsample+conv")}: loss {trainer.History[0].Total:0.0} → {trainer.History[^1].Total:0.0}, checkerboard energy {energies[transposed]:0.00}; ONNX differs by {diff:0.0000}");
                Assert.True(diff < 1e-3, $"the ONNX export differs by {diff}");
            }
            finally { File.Delete(onnx); }
            trainer.Net.Dispose();
        }
        foreach (var p in photos) p.Dispose();
        Assert.True(energies[false] * 5 <= energies[true], $"upsample+conv {energies[false]:0.00} against transposed {energies[true]:0.00}");
    }
}
