using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Imaging;

public sealed class ImageFixtures : IDisposable
{
    public TempDir Dir { get; } = new();
    public ImageFixtures()
    {
        var (code, output) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "make_image_fixtures.py"), Dir.Path);
        if (code != 0) throw new InvalidOperationException(output);
    }
    public void Dispose() => Dir.Dispose();
}

/// <summary>Decoding every supported format (fixtures written by Pillow), EXIF orientation, writing, resizing.</summary>
public class ImageIOTests(ImageFixtures fx) : IClassFixture<ImageFixtures>
{
    [Theory]
    [InlineData("ref.png", 0.0)]
    [InlineData("ref.bmp", 0.0)]
    [InlineData("ref.webp", 0.0)]
    [InlineData("ref.gif", 0.02)]
    [InlineData("ref.jpg", 0.06)]
    [InlineData("rotated.jpg", 0.06)]
    public void ReadsEveryFormatAsTheSamePicture(string file, double tolerance)
    {
        using var scope = NewDisposeScope();
        var reference = ImageIO.Load(fx.Dir.File("ref.png"));
        var img = ImageIO.Load(fx.Dir.File(file));
        Assert.Equal(new long[] { 1, 3, 20, 40 }, img.shape);
        double meanErr = (img - reference).abs().mean().item<float>();
        Assert.True(meanErr <= tolerance + 1e-6, $"{file}: mean abs difference {meanErr}");
        // The green marker sits top-left and the blue half on the right, whatever the storage order.
        Assert.True(img[0, 1, 2, 2].item<float>() > 0.6f && img[0, 0, 2, 2].item<float>() < 0.3f, "green marker not top-left");
        Assert.True(img[0, 2, 10, 35].item<float>() > 0.6f, "blue half not on the right");
    }

    [Fact]
    public void PngRoundTripIsExact()
    {
        using var scope = NewDisposeScope();
        var x = (rand(1, 3, 17, 23) * 255).round() / 255;
        string f = fx.Dir.File("roundtrip.png");
        ImageIO.Save(x, f);
        var y = ImageIO.Load(f);
        Assert.True((y - x).abs().max().item<float>() < 1e-6f);
        Assert.Empty(Directory.GetFiles(fx.Dir.Path, "*.tmp"));
    }

    [Fact]
    public void WritesJpegAndClampsOutOfRangeValues()
    {
        using var scope = NewDisposeScope();
        var x = full(1, 3, 8, 8, 1.7f);
        x[0, 0] = tensor(-0.4f);
        string f = fx.Dir.File("clamped.jpg");
        ImageIO.Save(x, f);
        var y = ImageIO.Load(f);
        Assert.True(y[0, 0].max().item<float>() < 0.05f);
        Assert.True(y[0, 1].min().item<float>() > 0.95f);
    }

    [Fact]
    public void ShrinkingIsAntialiased()
    {
        using var scope = NewDisposeScope();
        // A one-pixel checkerboard: a plain bilinear shrink by 8 samples it and keeps high contrast; an area-weighted one gives gray.
        var idx = arange(64);
        var board = (idx.unsqueeze(0) + idx.unsqueeze(1)).remainder(2).to(ScalarType.Float32);
        var img = board.expand(1, 3, 64, 64).contiguous();
        var small = ImageIO.Resize(img, 8, 8);
        Assert.True((small - 0.5f).abs().max().item<float>() < 0.05f, "shrinking aliased");
        var big = ImageIO.Resize(small, 32, 32);
        Assert.Equal(new long[] { 1, 3, 32, 32 }, big.shape);
    }

    [Fact]
    public void RejectsNonImagesAndUnknownExtensions()
    {
        string f = fx.Dir.File("fake.png");
        File.WriteAllText(f, "plain text");
        var e = Assert.Throws<BadInputException>(() => ImageIO.Load(f));
        Assert.Contains("not an image", e.Message);
        Assert.Throws<BadInputException>(() => ImageIO.Save(zeros(1, 3, 2, 2), fx.Dir.File("out.tiff")));
        Assert.False(File.Exists(fx.Dir.File("out.tiff")));
    }
}
