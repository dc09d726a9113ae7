using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>A differentiable change applied to the image before the network sees it (jitter, scale, rotate...).</summary>
internal interface ITransform
{
    /// <summary>Applies the transform with random choices drawn from <paramref name="rng"/>.</summary>
    Tensor Apply(Tensor image, Random rng);
}

/// <summary>
/// DeepDream's jitter: a random circular shift by up to <see cref="Max"/> pixels on each axis.
/// Because the gradient flows back through the roll, it arrives un-rolled: the shift is undone
/// for free. The offsets drawn are recorded, so that a run can be replayed (or compared with a
/// reference) offset for offset.
/// </summary>
internal sealed class RandomRoll(int max) : ITransform
{
    /// <summary>The largest shift in pixels.</summary>
    public int Max { get; } = max;

    /// <summary>The (dx, dy) offsets drawn so far.</summary>
    public List<(int Dx, int Dy)> Drawn { get; } = new();

    /// <summary>Draws the next offsets.</summary>
    public (int Dx, int Dy) Next(Random rng)
    {
        var o = (rng.Next(-Max, Max + 1), rng.Next(-Max, Max + 1));
        Drawn.Add(o);
        return o;
    }

    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng)
    {
        var (dx, dy) = Next(rng);
        return Roll(image, dx, dy);
    }

    /// <summary>Rolls an image [N,C,H,W] by dx columns and dy rows.</summary>
    public static Tensor Roll(Tensor image, int dx, int dy) =>
        dx == 0 && dy == 0 ? image.alias() : image.roll([dy, dx], [2, 3]);
}

/// <summary>Pads every side with a constant (Lucid pads with 0.5 gray).</summary>
internal sealed class Pad(int pixels, double value = 0.5) : ITransform
{
    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng) => nn.functional.pad(image, [pixels, pixels, pixels, pixels], value: value);
}

/// <summary>A random crop that removes up to <c>d - 1</c> pixels from the top-left (Lucid's jitter).</summary>
internal sealed class Jitter(int d) : ITransform
{
    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng)
    {
        if (d <= 1) return image;
        int dx = rng.Next(d), dy = rng.Next(d);
        return image.narrow(2, dy, image.shape[2] - d + 1).narrow(3, dx, image.shape[3] - d + 1);
    }
}

/// <summary>Rescales by a factor drawn from a list (bilinear).</summary>
internal sealed class RandomScale(IReadOnlyList<double> scales) : ITransform
{
    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng)
    {
        double s = scales[rng.Next(scales.Count)];
        if (s == 1) return image;
        long h = (long)Math.Round(image.shape[2] * s), w = (long)Math.Round(image.shape[3] * s);
        return nn.functional.interpolate(image, new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
    }
}

/// <summary>Rotates by an angle (degrees) drawn from a list, about the centre, reflecting at the borders.</summary>
internal sealed class RandomRotate(IReadOnlyList<double> degrees) : ITransform
{
    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng)
    {
        double deg = degrees[rng.Next(degrees.Count)];
        if (deg == 0) return image;
        double a = deg * Math.PI / 180;
        var theta = tensor(new float[] { (float)Math.Cos(a), (float)-Math.Sin(a), 0, (float)Math.Sin(a), (float)Math.Cos(a), 0 }, device: image.device)
            .reshape(1, 2, 3).expand(image.shape[0], 2, 3).to(image.dtype);
        var grid = nn.functional.affine_grid(theta, image.shape, align_corners: false);
        return nn.functional.grid_sample(image, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Reflection, align_corners: false);
    }
}

/// <summary>Transforms applied in order.</summary>
internal sealed class Compose(IReadOnlyList<ITransform> transforms) : ITransform
{
    /// <summary>The transforms.</summary>
    public IReadOnlyList<ITransform> Transforms { get; } = transforms;

    /// <summary>Lucid's standard transforms: pad 12, jitter 8, scale 0.9..1.1, rotate ±10°, jitter 4.</summary>
    public static Compose LucidStandard() => new([
        new Pad(12),
        new Jitter(8),
        new RandomScale(Enumerable.Range(0, 11).Select(i => 1 + (i - 5) / 50.0).ToList()),
        new RandomRotate(Enumerable.Range(-10, 21).Select(i => (double)i).Concat(Enumerable.Repeat(0.0, 5)).ToList()),
        new Jitter(4),
    ]);

    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng) => Transforms.Aggregate(image, (x, t) => t.Apply(x, rng));
}
