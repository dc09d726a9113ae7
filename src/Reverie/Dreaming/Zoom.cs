using static TorchSharp.torch;

namespace Reverie.Dreaming;

/// <summary>The zoom animation's step: each frame is the dream of the previous one, zoomed into its centre (and rotated).</summary>
internal static class Zoom
{
    /// <summary>Zooms into the centre by <paramref name="scale"/> (the fraction cropped) and rotates by <paramref name="degrees"/>, keeping the size; borders reflect.</summary>
    public static Tensor Step(Tensor image, double scale, double degrees)
    {
        using var scope = NewDisposeScope();
        double z = 1 - scale, a = degrees * Math.PI / 180;
        var theta = tensor(new float[] { (float)(Math.Cos(a) * z), (float)(-Math.Sin(a) * z), 0, (float)(Math.Sin(a) * z), (float)(Math.Cos(a) * z), 0 }, device: image.device).reshape(1, 2, 3);
        var grid = nn.functional.affine_grid(theta, image.shape, align_corners: false);
        var zoomed = nn.functional.grid_sample(image, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Reflection, align_corners: false);
        return zoomed.MoveToOuterDisposeScope();
    }
}
