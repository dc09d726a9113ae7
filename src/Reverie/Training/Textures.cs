using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>
/// A procedural data set of colourful patterns, generated on the fly: example <c>i</c> of seed
/// <c>s</c> is always the same image. Each image draws its class (balanced: i mod K), two or three
/// colours, a scale, a rotation, an offset and a little grain from a generator seeded by (s, i).
/// Edges are anti-aliased with a one-pixel ramp.
/// </summary>
internal sealed class TextureDataset : IImageDataset
{
    /// <summary>Seed range of the training split.</summary>
    public const int TrainSeed = 1;
    /// <summary>Seed range of the held-out split (disjoint from training).</summary>
    public const int TestSeed = 1_000_003;

    /// <summary>The classes, in label order.</summary>
    public static readonly string[] ClassNames =
    [
        "horizontal stripes", "vertical stripes", "diagonal stripes", "checkerboard", "dots", "rings",
        "spiral", "waves", "hexagons", "zigzag", "bricks", "scales", "crosshatch", "triangles", "rays",
        "blobs", "bubbles",
    ];

    readonly int _seed;
    readonly byte[]?[]? _cache;

    /// <summary>A data set of <paramref name="count"/> images of <paramref name="size"/>² pixels.</summary>
    /// <param name="count">Number of images.</param>
    /// <param name="seed">Seed of the set (<see cref="TrainSeed"/>, <see cref="TestSeed"/> or any other).</param>
    /// <param name="size">Side in pixels.</param>
    /// <param name="cache">Keep each rendered image (as bytes) so that later epochs do not render it again.</param>
    public TextureDataset(int count, int seed, int size = 128, bool cache = true)
    {
        if (count < 1 || count > 10_000_000) throw new BadInputException($"A texture data set needs 1 to 10 000 000 images; got {count}.");
        if (size is < 16 or > 1024) throw new BadInputException($"Texture images must be 16 to 1024 pixels; got {size}.");
        Count = count; _seed = seed; Height = Width = size;
        if (cache) _cache = new byte[]?[count];
    }

    /// <inheritdoc/>
    public string Name => $"textures (seed {_seed})";
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes => ClassNames;
    /// <inheritdoc/>
    public int Count { get; }
    /// <inheritdoc/>
    public int Height { get; }
    /// <inheritdoc/>
    public int Width { get; }
    /// <inheritdoc/>
    public bool Gray => false;
    /// <inheritdoc/>
    public int Label(int index) => index % ClassNames.Length;

    /// <inheritdoc/>
    public Tensor Images(IReadOnlyList<int> indices)
    {
        int n = Height * Width * 3;
        if (_cache is null)
        {
            var buf = new float[indices.Count * n];
            Parallel.For(0, indices.Count, k => Render(indices[k], buf.AsSpan(k * n, n)));
            return tensor(buf, [indices.Count, 3, Height, Width]);
        }
        var bytes = new byte[indices.Count * n];
        Parallel.For(0, indices.Count, k =>
        {
            int i = indices[k];
            if (_cache[i] is not { } img)
            {
                var f = new float[n];
                Render(i, f);
                img = new byte[n];
                for (int j = 0; j < n; j++) img[j] = (byte)Math.Round(f[j] * 255);
                _cache[i] = img;
            }
            img.CopyTo(bytes, k * n);
        });
        return tensor(bytes, [indices.Count, 3, Height, Width]).to(ScalarType.Float32).div_(S(255f));
    }

    /// <summary>One image, channel-major RGB in 0..1.</summary>
    public void Render(int index, Span<float> rgb)
    {
        var rng = new Random(Datasets.Seed(_seed, index, 0x7e47));
        int cls = Label(index), H = Height, W = Width;
        double scale = W / 128.0;
        double period = (8 + rng.NextDouble() * 16) * scale;                 // 8..24 px at 128
        double theta = rng.NextDouble() * Math.PI;
        double line = (1.2 + rng.NextDouble() * 1.8) * scale;                // line half-width
        double cx = W * (0.2 + 0.6 * rng.NextDouble()), cy = H * (0.2 + 0.6 * rng.NextDouble());
        double ox = rng.NextDouble() * 1000, oy = rng.NextDouble() * 1000;
        var (c1, c2, c3) = Colours(rng);
        double grain = 0.01 + 0.03 * rng.NextDouble();
        switch (cls)
        {
            case 0: theta = Math.PI / 2 + Jitter(rng, 12); break;
            case 1: theta = Jitter(rng, 12); break;
            case 2: theta = (rng.Next(2) == 0 ? Math.PI / 4 : 3 * Math.PI / 4) + Jitter(rng, 10); break;
        }
        double cos = Math.Cos(theta), sin = Math.Sin(theta);
        int arms = 1 + rng.Next(4), rays = 8 + rng.Next(17);
        double hatch = (60 + rng.NextDouble() * 30) * Math.PI / 180;
        double amp = period * (0.25 + 0.5 * rng.NextDouble()), wave = period * (2.5 + 3 * rng.NextDouble());
        var bubbles = cls == 16 ? Enumerable.Range(0, 12 + rng.Next(25)).Select(_ => (X: rng.NextDouble() * W, Y: rng.NextDouble() * H, R: (4 + rng.NextDouble() * 16) * scale, C: rng.Next(2))).ToArray() : [];
        var lattice = cls == 15 ? Enumerable.Range(0, 64 * 64).Select(_ => rng.NextDouble()).ToArray() : [];
        var noise = new Random(Datasets.Seed(_seed, index, 0x9a1));
        int plane = H * W;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                double px = x + 0.5, py = y + 0.5;
                double u = (px - cx) * cos + (py - cy) * sin + ox, v = -(px - cx) * sin + (py - cy) * cos + oy;
                double t = cls switch
                {
                    <= 2 => Band(u, period),
                    3 => Checker(u, v, period * 2),
                    4 => Dots(u, v, period),
                    5 => Band(Math.Sqrt((px - cx) * (px - cx) + (py - cy) * (py - cy)), period),
                    6 => Spiral(px - cx, py - cy, period, arms),
                    7 => Band(u + amp * Math.Sin(v * 2 * Math.PI / wave), period),
                    8 => Hexagons(u, v, period * 1.2, line),
                    9 => Band(u + amp * Tri(v / wave), period),
                    10 => Bricks(u, v, period * 1.6, line),
                    11 => Scales(u, v, period * 1.2, line),
                    12 => Math.Max(Line(u, period, line), Line(u * Math.Cos(hatch) + v * Math.Sin(hatch), period, line)),
                    13 => Triangles(u, v, period * 1.5),
                    14 => Rays(px - cx, py - cy, rays),
                    15 => Blobs(lattice, u / (period * 2), v / (period * 2)),
                    _ => Bubbles(bubbles, px, py),
                };
                double shade = 0.92 + 0.08 * Math.Sin((px + py) / W * 1.3 + ox);
                for (int c = 0; c < 3; c++)
                {
                    double a = cls == 16 && t > 1 ? c3[c] : 0; // bubbles of a third colour
                    double val = cls == 16 && t > 1 ? a * (t - 1) + c1[c] * (2 - t) : c1[c] * (1 - Math.Min(t, 1)) + c2[c] * Math.Min(t, 1);
                    val = val * shade + grain * (noise.NextDouble() * 2 - 1);
                    rgb[c * plane + y * W + x] = (float)Math.Clamp(val, 0, 1);
                }
            }
    }

    static double Jitter(Random r, double degrees) => (r.NextDouble() * 2 - 1) * degrees * Math.PI / 180;

    /// <summary>Two contrasting colours and a third.</summary>
    static (double[] A, double[] B, double[] C) Colours(Random rng)
    {
        double h1 = rng.NextDouble(), h2 = (h1 + 0.25 + 0.5 * rng.NextDouble()) % 1;
        double v1 = 0.15 + 0.35 * rng.NextDouble(), v2 = 0.7 + 0.3 * rng.NextDouble();
        if (rng.Next(2) == 0) (v1, v2) = (v2, v1);
        return (Hsv(h1, 0.4 + 0.6 * rng.NextDouble(), v1), Hsv(h2, 0.4 + 0.6 * rng.NextDouble(), v2), Hsv(rng.NextDouble(), 0.8, 0.9));
    }

    static double[] Hsv(double h, double s, double v)
    {
        double f(double n) { double k = (n + h * 6) % 6; return v - v * s * Math.Max(0, Math.Min(Math.Min(k, 4 - k), 1)); }
        return [f(5), f(3), f(1)];
    }

    static double Ramp(double d) => Math.Clamp(0.5 + d, 0, 1);
    static double Frac(double a) => a - Math.Floor(a);
    static double Tri(double a) => Math.Abs(Frac(a) - 0.5) * 4 - 1;

    /// <summary>Stripes: 1 in one half of each period.</summary>
    static double Band(double u, double p) => Ramp((Math.Abs(Frac(u / p) - 0.5) - 0.25) * p);

    /// <summary>Thin lines every period.</summary>
    static double Line(double u, double p, double w) => Ramp(w - Math.Abs(Frac(u / p + 0.5) - 0.5) * p);

    static double Checker(double u, double v, double p)
    {
        double a = Frac(u / p) - 0.5, b = Frac(v / p) - 0.5;
        double da = Math.Abs(Math.Abs(a) - 0.25) * p, db = Math.Abs(Math.Abs(b) - 0.25) * p; // distances to the cell edges
        double sign = (Math.Abs(a) < 0.25) == (Math.Abs(b) < 0.25) ? 1 : -1;
        return Ramp(sign * Math.Min(da, db));
    }

    static double Dots(double u, double v, double p)
    {
        double row = Math.Floor(v / p);
        double a = (Frac(u / p + (row % 2 == 0 ? 0 : 0.5)) - 0.5) * p, b = (Frac(v / p) - 0.5) * p;
        return Ramp(p * 0.3 - Math.Sqrt(a * a + b * b));
    }

    static double Spiral(double x, double y, double p, int arms)
    {
        double r = Math.Sqrt(x * x + y * y), phi = Math.Atan2(y, x);
        return Band(r + arms * p * phi / (2 * Math.PI), p);
    }

    static double Rays(double x, double y, int rays)
    {
        double r = Math.Sqrt(x * x + y * y), phi = Math.Atan2(y, x);
        double s = (Math.Abs(Frac(phi * rays / (2 * Math.PI)) - 0.5) - 0.25) * 2 * Math.PI * r / rays;
        return Ramp(s);
    }

    static double Hexagons(double u, double v, double p, double w)
    {
        // Hexagon centres on a triangular lattice p apart; distance to the cell wall in the hexagonal norm.
        double best = double.MaxValue, bx = 0, by = 0;
        double j0 = Math.Round(v / (p * Math.Sqrt(3) / 2));
        for (double j = j0 - 1; j <= j0 + 1; j++)
        {
            double rowX = (j % 2 == 0 ? 0 : p / 2), cyy = j * p * Math.Sqrt(3) / 2;
            double i = Math.Round((u - rowX) / p);
            for (double ii = i - 1; ii <= i + 1; ii++)
            {
                double dx = u - (ii * p + rowX), dy = v - cyy, d = dx * dx + dy * dy;
                if (d < best) { best = d; bx = dx; by = dy; }
            }
        }
        double s3 = Math.Sqrt(3) / 2;
        double hd = Math.Max(Math.Abs(bx), Math.Max(Math.Abs(bx / 2 + by * s3), Math.Abs(bx / 2 - by * s3)));
        return Ramp(w - Math.Abs(p / 2 - hd));
    }

    static double Bricks(double u, double v, double p, double w)
    {
        double h = p / 2, row = Math.Floor(v / h);
        double du = Math.Abs(Frac(u / p + (row % 2 == 0 ? 0 : 0.5) + 0.5) - 0.5) * p;
        double dv = Math.Abs(Frac(v / h + 0.5) - 0.5) * h;
        return Ramp(w - Math.Min(du, dv));
    }

    static double Scales(double u, double v, double p, double w)
    {
        // Rows of circles of radius p/2, each row half a step over the one before; the upper row's
        // disc covers the lower row's, so only the visible arcs remain.
        double h = p / 2, j = Math.Floor(v / h);
        for (double row = j + 1; row >= j - 1; row--)
        {
            double shift = (((long)row % 2) + 2) % 2 == 0 ? 0 : p / 2;
            double i = Math.Round((u - shift) / p), dx = u - (i * p + shift), dy = v - row * h;
            double r = Math.Sqrt(dx * dx + dy * dy);
            if (r < p / 2 + w && dy <= 0.5) return Ramp(w - Math.Abs(p / 2 - w - r));
        }
        return 0;
    }

    static double Triangles(double u, double v, double p)
    {
        double s3 = Math.Sqrt(3) / 2;
        double a = v / (p * s3), b = (u * s3 + v * 0.5) / (p * s3), c = (-u * s3 + v * 0.5) / (p * s3);
        long parity = ((long)Math.Floor(a) + (long)Math.Floor(b) + (long)Math.Floor(c)) & 1;
        double edge = Math.Min(Math.Abs(Frac(a + 0.5) - 0.5), Math.Min(Math.Abs(Frac(b + 0.5) - 0.5), Math.Abs(Frac(c + 0.5) - 0.5))) * p * s3;
        double t = Ramp(edge - 0.5);
        return parity == 1 ? 0.5 + 0.5 * t : 0.5 - 0.5 * t;
    }

    static double Blobs(double[] lattice, double u, double v)
    {
        double Noise(double x, double y)
        {
            int xi = (int)Math.Floor(x), yi = (int)Math.Floor(y);
            double fx = x - xi, fy = y - yi;
            fx = fx * fx * (3 - 2 * fx); fy = fy * fy * (3 - 2 * fy);
            double L(int a, int b) => lattice[(((yi + b) % 64 + 64) % 64) * 64 + (((xi + a) % 64) + 64) % 64];
            return (L(0, 0) * (1 - fx) + L(1, 0) * fx) * (1 - fy) + (L(0, 1) * (1 - fx) + L(1, 1) * fx) * fy;
        }
        double n = 0.7 * Noise(u, v) + 0.3 * Noise(u * 2.3 + 17, v * 2.3 + 5);
        return Ramp((n - 0.5) * 40);
    }

    /// <summary>0 background, 1 a bubble of the second colour, 2 a bubble of the third.</summary>
    static double Bubbles((double X, double Y, double R, int C)[] bubbles, double x, double y)
    {
        double t = 0;
        foreach (var b in bubbles)
        {
            double d = b.R - Math.Sqrt((x - b.X) * (x - b.X) + (y - b.Y) * (y - b.Y));
            double cover = Ramp(d);
            if (cover > 0) t = b.C == 0 ? Math.Max(t * (1 - cover), cover) : 1 + cover;
        }
        return t;
    }
}
