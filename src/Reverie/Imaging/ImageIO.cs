using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Reverie.Imaging;

/// <summary>Reads and writes images, and converts them to and from RGB float tensors [1,3,H,W] in 0..1.</summary>
public static class ImageIO
{
    /// <summary>The largest image, in pixels, that Reverie will decode (256 megapixels).</summary>
    public const long MaxPixels = 256L * 1024 * 1024;

    /// <summary>
    /// The largest image, in pixels, decoded whole (64 megapixels: 1 GB with its float copy). Larger
    /// ones are decoded only at a reduced size, row by row or by the codec's own scaling.
    /// </summary>
    internal const long MaxWholePixels = 64_000_000;

    /// <summary>The largest image file read: 1 GB (a 256-megapixel PNG compresses far below it).</summary>
    internal const long MaxFileBytes = 1L << 30;

    /// <summary>
    /// Reads a PNG, JPEG, BMP, WebP or GIF (first frame) file, applies its EXIF orientation and returns
    /// an RGB tensor [1,3,H,W] in 0..1. Transparent pixels are composited over white.
    /// </summary>
    /// <remarks>
    /// The size is read from the header first: more than <see cref="MaxPixels"/> is refused before
    /// any pixel is decoded. With <paramref name="maxSide"/> (the consumer shrinks the image to at
    /// most that many pixels on its longer side anyway), an image at least twice that large is
    /// decoded row by row and averaged down by a whole factor on the way (still at least
    /// <paramref name="maxSide"/> on its longer side), so that a huge photo costs memory for the
    /// small image only.
    /// </remarks>
    public static Tensor Load(string path, int? maxSide = null)
    {
        byte[] bytes = InputFile.ReadAllBytes(path, "image file", MaxFileBytes, confined: false);
        if (bytes.Length == 0) throw new BadInputException($"Image file '{BadInputException.Shown(path)}' is empty.");
        return Decode(bytes, path, maxSide);
    }

    /// <summary>
    /// An image file's width and height from its header, without decoding it (for a job's memory
    /// estimate); null when the file is not an image Reverie reads, which <see cref="Load"/> then says.
    /// </summary>
    internal static (int Width, int Height)? Dimensions(string path)
    {
        try
        {
            using var stream = InputFile.OpenRead(path, "image file", MaxFileBytes, confined: false);
            using var codec = SKCodec.Create(stream);
            return codec is null ? null : (codec.Info.Width, codec.Info.Height);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BadInputException) { return null; }
    }

    /// <summary>The pixels of an image of <paramref name="width"/>×<paramref name="height"/> after shrinking its longer side to <paramref name="maxSide"/> (none: as it is).</summary>
    internal static long PixelsWithin(int width, int height, int? maxSide)
    {
        int side = Math.Max(width, height);
        if (maxSide is not > 0 || side <= maxSide) return (long)width * height;
        double f = (double)maxSide.Value / side;
        return (long)Math.Ceiling(width * f) * (long)Math.Ceiling(height * f);
    }

    /// <summary>Decodes an encoded image held in memory; <paramref name="what"/> names it in error messages (see <see cref="Load"/>).</summary>
    public static Tensor Decode(byte[] bytes, string what = "image", int? maxSide = null)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        if (codec is null)
            throw new BadInputException($"'{what}' is not an image Reverie can read (PNG, JPEG, BMP, WebP or GIF expected).");
        var size = codec.Info;
        if ((long)size.Width * size.Height > MaxPixels || size.Width <= 0 || size.Height <= 0)
            throw new BadInputException($"'{what}' is {size.Width}x{size.Height} pixels; at most {MaxPixels / (1024 * 1024)} megapixels are accepted.");
        int factor = maxSide is > 0 and var m ? Math.Max(size.Width, size.Height) / m : 1;
        if (factor >= 2 && DecodeReduced(codec, bytes, factor, what) is { } small)
        {
            using (small)
            using (var orientedSmall = ApplyOrientation(small, codec.EncodedOrigin))
                return FromRgba(orientedSmall.Bytes, orientedSmall.Width, orientedSmall.Height);
        }
        // One budget for every format: what cannot be decoded at a reduced size (an interlaced PNG, a
        // GIF, a BMP, or any image when the consumer wants it whole) is decoded whole only up to
        // MaxWholePixels, refused from its header above that: a 190 kB GIF may claim 16000x16000.
        if ((long)size.Width * size.Height > MaxWholePixels)
            throw new BadInputException($"'{BadInputException.Shown(what)}' is {size.Width}x{size.Height} pixels, and {WholeReason(codec, bytes, maxSide)}; at most {MaxWholePixels / 1_000_000} megapixels are decoded whole. Save it as a JPEG or a plain (not interlaced) PNG, or shrink it.");
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success && result != SKCodecResult.IncompleteInput)
            throw new BadInputException($"'{what}' could not be decoded ({result}); the file may be corrupt.");
        if (result == SKCodecResult.IncompleteInput)
            throw new BadInputException($"'{what}' is truncated; the file is incomplete or corrupt.");
        using var oriented = ApplyOrientation(bitmap, codec.EncodedOrigin);
        return FromRgba(oriented.Bytes, oriented.Width, oriented.Height);
    }

    /// <summary>Why an image has to be decoded whole, for the refusal's sentence.</summary>
    static string WholeReason(SKCodec codec, byte[] bytes, int? maxSide) => codec.EncodedFormat switch
    {
        _ when maxSide is not > 0 => "this command needs it at full size",
        SKEncodedImageFormat.Png when bytes.Length > 28 && bytes[28] != 0 => "an interlaced PNG cannot be decoded at a reduced size",
        SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp => "it cannot be decoded at the reduced size this command needs",
        var f => $"a {f.ToString().ToUpperInvariant()} cannot be decoded at a reduced size",
    };

    /// <summary>
    /// Decodes at a reduced size: a PNG row by row (<see cref="PngRows"/>), each
    /// <paramref name="factor"/>×<paramref name="factor"/> block (composited over white) averaged into
    /// one pixel; a JPEG or WebP by the codec's own scaled decode. Null when neither applies (an
    /// interlaced PNG, a GIF), and the caller decodes in full.
    /// </summary>
    static SKBitmap? DecodeReduced(SKCodec codec, byte[] bytes, int factor, string what)
    {
        if (codec.EncodedFormat is SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp)
        {
            var scaled = codec.GetScaledDimensions(1f / factor);
            // The codec rounds to a scale it has (n/8 for JPEG); never below what the consumer needs.
            if (scaled.Width >= codec.Info.Width || (long)scaled.Width * factor < codec.Info.Width || (long)scaled.Height * factor < codec.Info.Height) return null;
            var sinfo = new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            var bmp = new SKBitmap(sinfo);
            var r = codec.GetPixels(sinfo, bmp.GetPixels());
            if (r == SKCodecResult.Success) return bmp;
            bmp.Dispose();
            if (r == SKCodecResult.IncompleteInput) throw new BadInputException($"'{what}' is truncated; the file is incomplete or corrupt.");
            return null;
        }
        if (codec.EncodedFormat != SKEncodedImageFormat.Png) return null;
        int w = codec.Info.Width, h = codec.Info.Height;
        int tw = (w + factor - 1) / factor, th = (h + factor - 1) / factor;
        var sums = new double[tw * 3];
        var counts = new int[tw];
        var outBytes = new byte[tw * th * 4];
        bool read;
        try
        {
            read = PngRows.TryRead(bytes, what, (y, row) =>
            {
                for (int x = 0; x < w; x++)
                {
                    int tx = x / factor, i = x * 4;
                    double a = row[i + 3] / 255.0, white = 255 * (1 - a);
                    sums[tx * 3] += row[i] * a + white;
                    sums[tx * 3 + 1] += row[i + 1] * a + white;
                    sums[tx * 3 + 2] += row[i + 2] * a + white;
                    counts[tx]++;
                }
                if ((y + 1) % factor != 0 && y != h - 1) return;
                int ty = y / factor;
                for (int tx = 0; tx < tw; tx++)
                {
                    int o = (ty * tw + tx) * 4;
                    for (int c = 0; c < 3; c++) outBytes[o + c] = (byte)Math.Clamp(Math.Round(sums[tx * 3 + c] / counts[tx]), 0, 255);
                    outBytes[o + 3] = 255;
                }
                Array.Clear(sums);
                Array.Clear(counts);
            });
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new BadInputException($"'{what}' could not be decoded ({e.GetType().Name.Replace("Exception", "")}); the file may be corrupt.", e);
        }
        if (!read) return null;
        var output = new SKBitmap(new SKImageInfo(tw, th, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        System.Runtime.InteropServices.Marshal.Copy(outBytes, 0, output.GetPixels(), outBytes.Length);
        return output;
    }

    static SKBitmap ApplyOrientation(SKBitmap src, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return src.Copy();
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int w = swap ? src.Height : src.Width, h = swap ? src.Width : src.Height;
        var dst = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using var canvas = new SKCanvas(dst);
        // The matrices map the stored pixels to the displayed orientation (EXIF 2.3, tag 0x0112).
        // Maps the stored pixels to the displayed orientation (EXIF 2.3, tag 0x0112):
        // x' = sx*x + kx*y + tx, y' = ky*x + sy*y + ty.
        var m = origin switch
        {
            SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, w, 0, 1, 0, 0, 0, 1),
            SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, w, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightTop => new SKMatrix(0, -1, w, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, w, -1, 0, h, 0, 0, 1),
            SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, h, 0, 0, 1),
            _ => SKMatrix.Identity,
        };
        canvas.SetMatrix(m);
        using var paint = new SKPaint { BlendMode = SKBlendMode.Src };
        canvas.DrawBitmap(src, 0, 0, paint);
        return dst;
    }

    /// <summary>Converts interleaved RGBA bytes to an RGB tensor [1,3,H,W] in 0..1, compositing alpha over white.</summary>
    public static Tensor FromRgba(byte[] rgba, int width, int height)
    {
        using var scope = NewDisposeScope();
        var t = tensor(rgba, dtype: ScalarType.Byte).reshape(height, width, 4).to(ScalarType.Float32).div_(S(255f));
        var rgb = t.narrow(2, 0, 3);
        var a = t.narrow(2, 3, 1);
        var composited = rgb * a + (S(1) - a);
        return composited.permute(2, 0, 1).unsqueeze(0).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Converts an RGB tensor [1,3,H,W] or [3,H,W] in 0..1 to interleaved RGBA bytes (clamped, rounded, opaque).</summary>
    public static (byte[] Rgba, int Width, int Height) ToRgba(Tensor image)
    {
        using var scope = NewDisposeScope();
        var x = image.detach().to(CPU).to(ScalarType.Float32);
        if (x.dim() == 4)
        {
            if (x.shape[0] != 1) throw new ArgumentException("Expected a single image [1,3,H,W].");
            x = x[0];
        }
        if (x.dim() != 3 || x.shape[0] != 3) throw new ArgumentException($"Expected an RGB image [1,3,H,W]; got [{string.Join(",", image.shape)}].");
        int h = (int)x.shape[1], w = (int)x.shape[2];
        var bytes = x.clamp(S(0), S(1)).mul(S(255)).round().to(ScalarType.Byte).permute(1, 2, 0);
        var alpha = full(new long[] { h, w, 1 }, S(255), dtype: ScalarType.Byte);
        var rgba = cat(new[] { bytes, alpha }, 2).contiguous();
        return (rgba.data<byte>().ToArray(), w, h);
    }

    /// <summary>Writes an RGB tensor as PNG or JPEG (by the file's extension), through a temporary file and a rename.</summary>
    public static void Save(Tensor image, string path, int jpegQuality = 95)
    {
        var (rgba, w, h) = ToRgba(image);
        byte[] encoded = Encode(rgba, w, h, FormatFor(path), jpegQuality);
        AtomicFile.WriteAllBytes(path, encoded);
    }

    /// <summary>The encoder format for a file name: PNG or JPEG.</summary>
    public static SKEncodedImageFormat FormatFor(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => SKEncodedImageFormat.Png,
        ".jpg" or ".jpeg" => SKEncodedImageFormat.Jpeg,
        var e => throw new BadInputException($"Cannot write '{path}': the extension '{e}' is not supported (use .png, .jpg or .jpeg)."),
    };

    /// <summary>Encodes RGBA bytes as PNG or JPEG.</summary>
    public static byte[] Encode(byte[] rgba, int width, int height, SKEncodedImageFormat format, int quality = 95)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>
    /// Resizes an image tensor [N,C,H,W] to the given size: bilinear when enlarging, bilinear with
    /// antialiasing (area-weighted) when shrinking, so that downscaled images do not alias.
    /// </summary>
    public static Tensor Resize(Tensor image, int height, int width)
    {
        if (height <= 0 || width <= 0) throw new BadInputException($"Cannot resize to {width}x{height}: both sides must be positive.");
        bool shrinking = height < image.shape[2] || width < image.shape[3];
        return nn.functional.interpolate(image, new long[] { height, width }, mode: InterpolationMode.Bilinear,
            align_corners: false, antialias: shrinking);
    }
}

/// <summary>Writes files so that a reader never sees a half-written one: a temporary file in the same folder, then a rename.</summary>
internal static class AtomicFile
{
    /// <summary>Writes all bytes to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Writes text to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Lets <paramref name="write"/> fill a temporary file, then renames it over <paramref name="path"/>; on failure the temporary file is removed.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new BadInputException($"Cannot write '{path}': the folder '{dir}' does not exist.");
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(fs);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }
}
