using SkiaSharp;
using static TorchSharp.torch;

namespace Reverie.Imaging;

/// <summary>
/// A map drawn over a photo for people: a perceptual colour map (viridis for magnitudes; a
/// blue-gray-red diverging map centred on zero for signed maps) blended in proportion to the value,
/// a colour bar with its scale, and a title. The scale is the 99.5th percentile of |map|, so that
/// a few extreme pixels do not wash out the rest; values beyond it are drawn at full colour.
/// </summary>
internal static class Overlay
{
    const int TitleHeight = 44, BarWidth = 84;

    /// <summary>
    /// The photo [1,3,H,W] with <paramref name="map"/> [h,w] (upsampled to the photo) over it, as an
    /// image [1,3,H+title,W+bar]; with no map, the photo alone in the same frame (for sheets that mix both).
    /// </summary>
    public static Tensor Draw(Tensor photo, Tensor? map, bool signed, string title, string subtitle)
    {
        using var scope = NewDisposeScope();
        long h = photo.shape[2], w = photo.shape[3];
        var blended = photo[0].to(CPU).to(ScalarType.Float32);
        double scale = 0;
        if (map is not null)
        {
            var m = map.detach().to(CPU).to(ScalarType.Float32);
            if (m.shape[0] != h || m.shape[1] != w)
                m = nn.functional.interpolate(m[TensorIndex.None, TensorIndex.None], [h, w], mode: InterpolationMode.Bilinear, align_corners: false)[0, 0];
            scale = Scale(m);
            var t = (m / S(scale)).clamp(S(signed ? -1 : 0), S(1));
            var colors = signed ? Diverging(t) : Sequential(t);
            var alpha = (signed ? t.abs() : t) * S(0.6) + S(0.2);
            blended = blended * (S(1) - alpha) + colors * alpha;
        }
        var (rgba, iw, ih) = ImageIO.ToRgba(blended);

        var info = new SKImageInfo(iw + BarWidth, ih + TitleHeight);
        using var surface = SKSurface.Create(info);
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using (var bitmap = new SKBitmap(new SKImageInfo(iw, ih, SKColorType.Rgba8888, SKAlphaType.Unpremul)))
        {
            System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
            canvas.DrawBitmap(bitmap, 0, TitleHeight);
        }
        Plot.Text(canvas, title, 6, 19, 15, bold: true);
        Plot.Text(canvas, subtitle, 6, 38, 13, color: new SKColor(0x44, 0x44, 0x44));

        // The colour bar: top = +scale, bottom = 0 (or -scale when signed).
        if (map is null) return Snapshot(surface, info).MoveToOuterDisposeScope();
        float top = TitleHeight + 10, bottom = TitleHeight + ih - 10, left = iw + 10, width = 16;
        int steps = (int)Math.Max(2, bottom - top);
        for (int i = 0; i < steps; i++)
        {
            double v = 1 - (double)i / (steps - 1);           // 1 .. 0
            double value = signed ? 2 * v - 1 : v;             // 1 .. -1 when signed
            using var paint = new SKPaint { Color = signed ? DivergingColor(value) : Plot.Viridis(value) };
            canvas.DrawRect(left, top + i, width, 1.5f, paint);
        }
        using (var frame = new SKPaint { Color = SKColors.Gray, Style = SKPaintStyle.Stroke, StrokeWidth = 1 })
            canvas.DrawRect(left, top, width, bottom - top, frame);
        Plot.Text(canvas, Plot.Format(scale), left + width + 4, top + 5, 11);
        Plot.Text(canvas, "0", left + width + 4, signed ? (top + bottom) / 2 + 4 : bottom, 11);
        if (signed) Plot.Text(canvas, Plot.Format(-scale), left + width + 4, bottom, 11);
        return Snapshot(surface, info).MoveToOuterDisposeScope();
    }

    static Tensor Snapshot(SKSurface surface, SKImageInfo info)
    {
        using var snapshot = surface.Snapshot();
        var pixels = new byte[info.Width * info.Height * 4];
        var handle = System.Runtime.InteropServices.GCHandle.Alloc(pixels, System.Runtime.InteropServices.GCHandleType.Pinned);
        try { snapshot.ReadPixels(new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), handle.AddrOfPinnedObject(), info.Width * 4, 0, 0); }
        finally { handle.Free(); }
        return ImageIO.FromRgba(pixels, info.Width, info.Height);
    }

    /// <summary>The 99.5th percentile of |map| (a tiny positive number for an all-zero map).</summary>
    public static double Scale(Tensor map)
    {
        var a = map.abs().flatten();
        long k = Math.Max(1, (long)Math.Ceiling(a.shape[0] * 0.995));
        double q = a.kthvalue(k, 0, false).values.item<float>();
        if (!(q > 0)) q = a.max().item<float>();
        return q > 0 ? q : 1e-12;
    }

    static Tensor Sequential(Tensor t)
    {
        // Viridis through its ten stops, per pixel.
        var table = tensor(Enumerable.Range(0, 256).SelectMany(i => { var c = Plot.Viridis(i / 255.0); return new[] { c.Red / 255f, c.Green / 255f, c.Blue / 255f }; }).ToArray()).reshape(256, 3);
        var index = (t * S(255)).round().to(ScalarType.Int64).clamp(S(0), S(255));
        return table.index_select(0, index.flatten()).reshape(t.shape[0], t.shape[1], 3).permute(2, 0, 1);
    }

    static readonly (float R, float G, float B) Negative = (0.23f, 0.30f, 0.75f), Zero = (0.87f, 0.87f, 0.87f), Positive = (0.71f, 0.02f, 0.15f);

    static Tensor Diverging(Tensor t)
    {
        var pos = t.clamp_min(S(0)).unsqueeze(0);
        var neg = (-t).clamp_min(S(0)).unsqueeze(0);
        Tensor C(float a, float b, float c) => tensor(new[] { a, b, c }).reshape(3, 1, 1);
        var zero = C(Zero.R, Zero.G, Zero.B);
        return zero + pos * (C(Positive.R, Positive.G, Positive.B) - zero) + neg * (C(Negative.R, Negative.G, Negative.B) - zero);
    }

    static SKColor DivergingColor(double v)
    {
        var (r, g, b) = v >= 0 ? Positive : Negative;
        double u = Math.Abs(v);
        byte Mix(float end, float zero) => (byte)Math.Round(255 * (zero + u * (end - zero)));
        return new SKColor(Mix(r, Zero.R), Mix(g, Zero.G), Mix(b, Zero.B));
    }
}
