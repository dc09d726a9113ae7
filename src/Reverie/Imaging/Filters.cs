using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Reverie.Imaging;

/// <summary>Image filters and colour conversions on [N,C,H,W] tensors.</summary>
internal static class Filters
{
    /// <summary>A separable Gaussian blur with reflect padding; sigma in pixels (≤ 0 returns a copy).</summary>
    public static Tensor GaussianBlur(Tensor x, double sigma)
    {
        if (sigma <= 0) return x.clone();
        int radius = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        radius = (int)Math.Min(radius, Math.Min(x.shape[2], x.shape[3]) - 1);
        if (radius < 1) return x.clone();
        var k = new float[2 * radius + 1];
        for (int i = -radius; i <= radius; i++) k[i + radius] = (float)Math.Exp(-i * i / (2 * sigma * sigma));
        float s = k.Sum();
        for (int i = 0; i < k.Length; i++) k[i] /= s;
        using var scope = NewDisposeScope();
        long c = x.shape[1];
        var kernel = tensor(k, device: x.device, dtype: x.dtype);
        var kx = kernel.reshape(1, 1, 1, -1).expand(c, 1, 1, -1);
        var ky = kernel.reshape(1, 1, -1, 1).expand(c, 1, -1, 1);
        var y = F.conv2d(F.pad(x, [radius, radius, 0, 0], TorchSharp.PaddingModes.Reflect), kx, groups: c);
        y = F.conv2d(F.pad(y, [0, 0, radius, radius], TorchSharp.PaddingModes.Reflect), ky, groups: c);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>RGB in 0..1 to YCbCr (ITU-R BT.601, full range, Cb and Cr centred on 0.5).</summary>
    public static Tensor RgbToYCbCr(Tensor rgb)
    {
        var r = rgb[.., 0..1]; var g = rgb[.., 1..2]; var b = rgb[.., 2..3];
        var y = r * S(0.299) + g * S(0.587) + b * S(0.114);
        var cb = (b - y) * S(0.564) + S(0.5);
        var cr = (r - y) * S(0.713) + S(0.5);
        return cat([y, cb, cr], 1);
    }

    /// <summary>YCbCr (as produced by <see cref="RgbToYCbCr"/>) back to RGB.</summary>
    public static Tensor YCbCrToRgb(Tensor ycc)
    {
        var y = ycc[.., 0..1]; var cb = ycc[.., 1..2] - S(0.5); var cr = ycc[.., 2..3] - S(0.5);
        var r = y + cr * S(1.403);
        var b = y + cb * S(1.773);
        var g = (y - r * S(0.299) - b * S(0.114)) / S(0.587);
        return cat([r, g, b], 1);
    }

    /// <summary>Keeps the colours (Cb, Cr) of <paramref name="original"/> and the luminance of <paramref name="result"/>.</summary>
    public static Tensor TransferLuminance(Tensor result, Tensor original)
    {
        using var scope = NewDisposeScope();
        var r = RgbToYCbCr(result);
        var o = RgbToYCbCr(original);
        return YCbCrToRgb(cat([r[.., 0..1], o[.., 1..3]], 1)).clamp(S(0), S(1)).MoveToOuterDisposeScope();
    }

    /// <summary>Peak signal-to-noise ratio in dB between two images in 0..1.</summary>
    public static double Psnr(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        double mse = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).pow(S(2)).mean().item<double>();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(1 / mse);
    }
}
