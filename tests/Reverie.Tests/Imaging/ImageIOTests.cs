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
    [InlineData("kind-rgba.png")]
    [InlineData("kind-rgb.png")]
    [InlineData("kind-l.png")]
    [InlineData("kind-la.png")]
    [InlineData("kind-p.png")]
    [InlineData("kind-16.png")]
    [InlineData("ref.jpg")]
    public void AShrunkDecodeIsTheFullDecodeAveragedDown(string file)
    {
        using var scope = NewDisposeScope();
        var full = ImageIO.Load(fx.Dir.File(file));
        var small = ImageIO.Load(fx.Dir.File(file), maxSide: file.StartsWith("ref") ? 20 : 30);
        int factor = file.StartsWith("ref") ? 2 : 4;
        Assert.Equal(new[] { 1L, 3, (full.shape[2] + factor - 1) / factor, (full.shape[3] + factor - 1) / factor }, small.shape);
        // The reference: the full decode (alpha already over white) averaged over factor x factor blocks.
        var expected = nn.functional.avg_pool2d(full, factor, factor, ceil_mode: true, count_include_pad: false);
        double err = (small - expected).abs().max().item<float>();
        Assert.True(err <= (file.EndsWith(".jpg") ? 0.08 : 1.0 / 255 + 1e-4), $"{file}: max difference {err}");
    }

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
        var x = (rand(1, 3, 17, 23) * S(255)).round() / S(255);
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
        var x = full(1, 3, 8, 8, S(1.7f));
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
        var idx = arange(S(64));
        var board = (idx.unsqueeze(0) + idx.unsqueeze(1)).remainder(S(2)).to(ScalarType.Float32);
        var img = board.expand(1, 3, 64, 64).contiguous();
        var small = ImageIO.Resize(img, 8, 8);
        Assert.True((small - S(0.5f)).abs().max().item<float>() < 0.05f, "shrinking aliased");
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

/// <summary>The image-loading policy: a consumer that shrinks anyway gets the image decoded at reduced size, row by row.</summary>
public class ReducedDecodeTests
{
    static byte[] Png(int w, int h, Func<int, int, SkiaSharp.SKColor> color)
    {
        using var bmp = new SkiaSharp.SKBitmap(w, h);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) bmp.SetPixel(x, y, color(x, y));
        using var img = SkiaSharp.SKImage.FromBitmap(bmp);
        return img.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100).ToArray();
    }

    [Fact]
    public void AShrunkDecodeAveragesBlocksAndMatchesTheFullDecodeShrunk()
    {
        using var scope = NewDisposeScope();
        // Stripes of 1 px: a plain subsample would give one colour; the block average gives the mean.
        var bytes = Png(400, 300, (x, y) => x % 2 == 0 ? new SkiaSharp.SKColor(255, 0, 0) : new SkiaSharp.SKColor(0, 0, 255));
        var small = ImageIO.Decode(bytes, "stripes", maxSide: 100);
        Assert.Equal(new long[] { 1, 3, 75, 100 }, small.shape); // factor 4: 400/4 x 300/4
        Assert.Equal(0.5, small[0, 0].mean().item<float>(), 2);
        Assert.Equal(0.5, small[0, 2].mean().item<float>(), 2);
        var full = ImageIO.Decode(bytes, "stripes");
        Assert.Equal(new long[] { 1, 3, 300, 400 }, full.shape);
        // Under twice the wanted side, the image is decoded whole (the consumer's resize does the rest).
        Assert.Equal(new long[] { 1, 3, 300, 400 }, ImageIO.Decode(bytes, "stripes", maxSide: 201).shape);
    }

    [Fact]
    public void TransparentPixelsAreWhiteInTheShrunkDecodeToo()
    {
        using var scope = NewDisposeScope();
        var bytes = Png(64, 64, (x, y) => new SkiaSharp.SKColor(0, 0, 0, 0));
        var small = ImageIO.Decode(bytes, "clear", maxSide: 16);
        Assert.Equal(new long[] { 1, 3, 16, 16 }, small.shape);
        Assert.Equal(1.0, small.min().item<float>(), 3);
    }
}
