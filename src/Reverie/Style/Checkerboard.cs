using static TorchSharp.torch;

namespace Reverie.Style;

/// <summary>
/// How strongly a picture shows the checkerboard that strided upsampling prints (Odena et al. 2016):
/// the power of its 2-D spectrum at the frequencies of a period-2 and period-4 grid, relative to the
/// frequencies around them.
/// </summary>
internal static class Checkerboard
{
    /// <summary>
    /// The mean, over the grid frequencies (k·H/4, l·W/4) other than (0, 0), of the power there divided by
    /// the mean power of the ring of frequencies 2 to 3 steps away. About 1 for a photo; far above 1 for a
    /// picture with a period-2 or period-4 grid. The image [1,3,H,W] is cropped to multiples of 4, made
    /// gray, and its mean removed.
    /// </summary>
    public static double Energy(Tensor image)
    {
        using var scope = NewDisposeScope();
        long h = image.shape[2] / 4 * 4, w = image.shape[3] / 4 * 4;
        var gray = image.narrow(2, 0, h).narrow(3, 0, w).to(ScalarType.Float64).mean([1])[0];
        gray = gray - gray.mean();
        var power = fft.fft2(gray).abs().square().cpu();
        var p = power.data<double>().ToArray();
        double At(long y, long x) => p[((y % h + h) % h) * w + ((x % w + w) % w)];
        double sum = 0;
        int count = 0;
        for (int ky = 0; ky < 4; ky++)
            for (int kx = 0; kx < 4; kx++)
            {
                if (ky == 0 && kx == 0) continue;
                long cy = ky * h / 4, cx = kx * w / 4;
                double ring = 0;
                int n = 0;
                for (long dy = -3; dy <= 3; dy++)
                    for (long dx = -3; dx <= 3; dx++)
                    {
                        long r = Math.Max(Math.Abs(dy), Math.Abs(dx));
                        if (r < 2) continue;
                        ring += At(cy + dy, cx + dx);
                        n++;
                    }
                sum += At(cy, cx) / Math.Max(ring / n, 1e-30);
                count++;
            }
        return sum / count;
    }
}
