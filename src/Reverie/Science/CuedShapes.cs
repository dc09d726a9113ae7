using Reverie.Training;
using static TorchSharp.torch;

namespace Reverie.Science;

/// <summary>Where the coloured stamp of a <see cref="CuedShapes"/> image takes its colour from.</summary>
internal enum Cue
{
    /// <summary>The colour of the image's own class: a perfect predictor of the label (the shortcut).</summary>
    Matched,
    /// <summary>Any of the classes' colours at random: no information about the label.</summary>
    Random,
    /// <summary>The colour of another class, at random: the shortcut points to a wrong answer.</summary>
    Swapped,
}

/// <summary>
/// Generated shapes on a noisy gray ground, each image carrying a coloured stamp in its top-left
/// corner: the data of the shortcut experiment (Reverie's analogue of Ribeiro et al.'s "wolf on
/// snow" and of the copyright tags Lapuschkin et al. 2019 found horse classifiers reading). The
/// class is the shape (circle, square, triangle, cross); the shape is gray, of random size, place,
/// rotation and contrast, so that it takes some learning; the stamp's colour follows
/// <see cref="Cue"/>. Example <c>i</c> of a seed is always the same image, and the same shape under
/// every cue, so that a network can be shown one picture with its stamp matched and swapped.
/// </summary>
internal sealed class CuedShapes : IImageDataset
{
    /// <summary>The classes, in label order.</summary>
    public static readonly string[] ClassNames = ["circle", "square", "triangle", "cross"];

    /// <summary>The stamp colours, one per class (red, green, blue, yellow).</summary>
    public static readonly float[][] Colours = [[0.90f, 0.12f, 0.10f], [0.10f, 0.75f, 0.15f], [0.12f, 0.25f, 0.95f], [0.95f, 0.85f, 0.10f]];

    readonly int _seed;
    readonly int[]? _labels;

    /// <summary>
    /// <paramref name="count"/> images of <paramref name="size"/>² pixels from <paramref name="seed"/>;
    /// <paramref name="labels"/> replaces the true labels (the label-randomization check trains on a permutation).
    /// </summary>
    public CuedShapes(int count, int seed, Cue cue, int size = 64, int[]? labels = null)
    {
        if (count < 1 || count > 1_000_000) throw new BadInputException($"The shapes data set needs 1 to 1 000 000 images; got {count}.");
        if (size is < 32 or > 512) throw new BadInputException($"Shape images must be 32 to 512 pixels; got {size}.");
        if (labels is not null && labels.Length != count) throw new ArgumentException("one label per image", nameof(labels));
        Count = count; _seed = seed; Cue = cue; Height = Width = size; _labels = labels;
    }

    /// <summary>Where the stamps' colours come from.</summary>
    public Cue Cue { get; }
    /// <summary>The stamp's side in pixels (3/16 of the image: 12 px at 64).</summary>
    public int Stamp => Width * 3 / 16;
    /// <inheritdoc/>
    public string Name => $"shapes ({Cue.ToString().ToLowerInvariant()} stamp{(_labels is null ? "" : ", permuted labels")}, seed {_seed})";
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
    /// <summary>The shape drawn in example <paramref name="index"/>.</summary>
    public int Shape(int index) => index % ClassNames.Length;
    /// <inheritdoc/>
    public int Label(int index) => _labels?[index] ?? Shape(index);

    /// <summary>The same images under another cue (and the true labels).</summary>
    public CuedShapes With(Cue cue) => new(Count, _seed, cue, Width);

    /// <inheritdoc/>
    public Tensor Images(IReadOnlyList<int> indices)
    {
        int n = 3 * Height * Width;
        var buf = new float[indices.Count * n];
        Parallel.For(0, indices.Count, k => Render(indices[k], buf.AsSpan(k * n, n), null));
        return tensor(buf, [indices.Count, 3, Height, Width]);
    }

    /// <summary>The regions of example <paramref name="index"/>, [2,H,W] of 0/1: the stamp, and the shape with a 2-pixel border (where its edges' gradients fall).</summary>
    public Tensor Regions(int index)
    {
        var mask = new float[2 * Height * Width];
        Render(index, new float[3 * Height * Width], mask);
        return tensor(mask, [2, Height, Width]);
    }

    /// <summary>The stamp's colour (a class index) of example <paramref name="index"/>.</summary>
    public int StampClass(int index)
    {
        var rng = new Random(Datasets.Seed(_seed, index, 0x5c0e));
        int shape = Shape(index), k = ClassNames.Length;
        return Cue switch
        {
            Cue.Matched => shape,
            Cue.Random => rng.Next(k),
            _ => (shape + 1 + rng.Next(k - 1)) % k,
        };
    }

    void Render(int index, Span<float> rgb, float[]? regions)
    {
        var rng = new Random(Datasets.Seed(_seed, index, 0x5a9e));
        int H = Height, W = Width, plane = H * W, shape = Shape(index), stamp = Stamp;
        double s = W / 64.0;
        double ground = 0.35 + 0.3 * rng.NextDouble();
        double contrast = (0.12 + 0.18 * rng.NextDouble()) * (rng.Next(2) == 0 ? -1 : 1);
        double r = (9 + 6 * rng.NextDouble()) * s;                       // circumradius 9..15 px at 64
        double lo = stamp + r * 0.9, hi = W - r - 2 * s;                  // clear of the stamp and the edges
        double cx = lo + (hi - lo) * rng.NextDouble(), cy = lo + (hi - lo) * rng.NextDouble();
        double theta = rng.NextDouble() * 2 * Math.PI, cos = Math.Cos(theta), sin = Math.Sin(theta);
        double grain = 0.05 + 0.05 * rng.NextDouble();
        var noise = new Random(Datasets.Seed(_seed, index, 0x6b1));
        var colour = Colours[StampClass(index)];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int i = y * W + x;
                double px = x + 0.5 - cx, py = y + 0.5 - cy;
                double u = px * cos + py * sin, v = -px * sin + py * cos;
                double d = Distance(shape, u, v, r);
                double cover = Math.Clamp(0.5 - d / s, 0, 1);
                double g = ground + contrast * cover + grain * (noise.NextDouble() * 2 - 1);
                bool inStamp = x < stamp && y < stamp;
                for (int c = 0; c < 3; c++) rgb[c * plane + i] = inStamp ? colour[c] : (float)Math.Clamp(g, 0, 1);
                if (regions is not null)
                {
                    regions[i] = inStamp ? 1 : 0;
                    regions[plane + i] = d <= 2 * s ? 1 : 0;
                }
            }
    }

    /// <summary>A signed distance (negative inside) to a shape of circumradius <paramref name="r"/>, in its own rotated frame.</summary>
    static double Distance(int shape, double u, double v, double r)
    {
        switch (shape)
        {
            case 0: return Math.Sqrt(u * u + v * v) - r * 0.85;
            case 1: return Math.Max(Math.Abs(u), Math.Abs(v)) - r * 0.72;
            case 2:
            {
                // Equilateral: the largest of three half-plane distances, inradius r/2.
                double d = double.MinValue;
                for (int k = 0; k < 3; k++)
                {
                    double a = Math.PI / 2 + k * 2 * Math.PI / 3;
                    d = Math.Max(d, u * Math.Cos(a) + v * Math.Sin(a) - r * 0.5);
                }
                return d;
            }
            default:
            {
                double arm = r * 0.95, half = r * 0.3;
                double h = Math.Max(Math.Abs(u) - arm, Math.Abs(v) - half), w = Math.Max(Math.Abs(u) - half, Math.Abs(v) - arm);
                return Math.Min(h, w);
            }
        }
    }
}
