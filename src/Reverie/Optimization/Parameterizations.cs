using Reverie.Imaging;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Reverie.Optimization;

/// <summary>How an image is produced from the parameters being optimized.</summary>
internal interface IParameterization
{
    /// <summary>The tensors the step rule updates.</summary>
    IReadOnlyList<Parameter> Parameters { get; }
    /// <summary>The current images, RGB [N,3,H,W] in 0..1, differentiable with respect to <see cref="Parameters"/>.</summary>
    Tensor Image();
    /// <summary>Called after each step (e.g. to project pixels back into 0..1 or onto a ball).</summary>
    void AfterStep() { }
    /// <summary>Stages the parameterization runs through (the octaves of a pyramid); 1 for most.</summary>
    int Stages => 1;
    /// <summary>Called before stage <paramref name="stage"/> (new parameters may be made: the step rule restarts).</summary>
    void BeginStage(int stage) { }
    /// <summary>Called after stage <paramref name="stage"/>.</summary>
    void EndStage(int stage) { }
    /// <summary>The result as it stands (at full size, with every stage's work), detached.</summary>
    Tensor Result() { using var noGrad = no_grad(); return Image().detach().clone(); }
}

/// <summary>Raw pixels: the image is the parameter, clipped to 0..1 after each step.</summary>
internal sealed class PixelParameterization : IParameterization
{
    readonly Parameter _pixels;

    /// <summary>Starts from <paramref name="initial"/> [N,3,H,W] in 0..1 (copied).</summary>
    public PixelParameterization(Tensor initial)
    {
        _pixels = new TorchSharp.Modules.Parameter(initial.detach().clone());
    }

    /// <summary>Starts from uniform noise in 0..1 drawn from <paramref name="generator"/>.</summary>
    public static PixelParameterization Noise(int batch, int height, int width, Generator generator, Device? device = null) =>
        new(rand(new long[] { batch, 3, height, width }, generator: generator, device: device));

    /// <inheritdoc/>
    public IReadOnlyList<Parameter> Parameters => [_pixels];
    /// <inheritdoc/>
    public Tensor Image() => _pixels;
    /// <inheritdoc/>
    public void AfterStep()
    {
        using var noGrad = no_grad();
        _pixels.clamp_(S(0), S(1));
    }
}

/// <summary>
/// Lucid's image parameterization: a Fourier spectrum scaled by 1/f (so that all frequencies
/// learn at similar rates), turned into an image by an inverse real FFT, with colours decorrelated
/// by the square root of ImageNet's colour correlation, and squashed into 0..1 by a sigmoid.
/// </summary>
internal sealed class FourierParameterization : IParameterization
{
    // The square root of the colour correlation matrix of ImageNet images (Lucid's
    // color_correlation_svd_sqrt), normalized by its largest column norm.
    static readonly float[,] ColorSqrt = { { 0.26f, 0.09f, 0.02f }, { 0.27f, 0.00f, -0.05f }, { 0.27f, -0.09f, 0.03f } };

    readonly Parameter _spectrum; // [N,3,H,W/2+1,2]
    readonly Tensor _scale;    // [1,1,H,W/2+1,1]
    readonly Tensor _color;    // [3,3]
    readonly int _h, _w;

    /// <summary>A random spectrum (normal, sd 0.01) for a batch of images.</summary>
    public FourierParameterization(int batch, int height, int width, Generator generator, Device? device = null, double decayPower = 1.0)
    {
        _h = height; _w = width;
        int fw = width / 2 + 1;
        var scale = new float[height * fw];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < fw; x++)
        {
            // numpy.fft.fftfreq: k/n for k < n/2 (ceil), then negative frequencies.
            double fy = (y < (height + 1) / 2 ? y : y - height) / (double)height;
            double fx = x / (double)width;
            double f = Math.Sqrt(fx * fx + fy * fy);
            scale[y * fw + x] = (float)(1.0 / Math.Pow(Math.Max(f, 1.0 / Math.Max(width, height)), decayPower));
        }
        _scale = tensor(scale, device: device).reshape(1, 1, height, fw, 1);
        _spectrum = new TorchSharp.Modules.Parameter(randn(new long[] { batch, 3, height, fw, 2 }, generator: generator, device: device) * S(0.01));
        double maxNorm = Enumerable.Range(0, 3).Max(c => Math.Sqrt(Enumerable.Range(0, 3).Sum(r => ColorSqrt[r, c] * ColorSqrt[r, c])));
        var m = new float[9];
        for (int r = 0; r < 3; r++) for (int c = 0; c < 3; c++) m[r * 3 + c] = (float)(ColorSqrt[r, c] / maxNorm);
        _color = tensor(m, device: device).reshape(3, 3);
    }

    /// <inheritdoc/>
    public IReadOnlyList<Parameter> Parameters => [_spectrum];

    /// <inheritdoc/>
    public Tensor Image()
    {
        var complex = view_as_complex(_spectrum * _scale);
        var image = fft.irfft2(complex, s: new long[] { _h, _w }, norm: TorchSharp.FFTNormType.Ortho) / S(4.0); // Lucid's "magic" 4
        // Decorrelated colour: each pixel's 3-vector times the normalized colour square root.
        var decorrelated = einsum("nchw,dc->ndhw", image, _color);
        return decorrelated.sigmoid();
    }
}

/// <summary>
/// Pixels confined to a ball around a photo: after each step the image is projected back onto
/// {‖x − x₀‖ ≤ ε} ∩ [0,1], in L∞ (per pixel) or L2 (per image). Optionally starts from a uniformly
/// random point of the L∞ ball (PGD's random start). The gradient attacks use it.
/// </summary>
internal sealed class BallParameterization : IParameterization
{
    readonly Parameter _pixels;
    readonly Tensor _origin;

    /// <summary>The radius.</summary>
    public double Eps { get; }
    /// <summary>L2 (true) or L∞ (false).</summary>
    public bool L2 { get; }

    /// <summary>Pixels around <paramref name="origin"/> [N,3,H,W] in 0..1 (copied), within <paramref name="eps"/>.</summary>
    public BallParameterization(Tensor origin, double eps, bool l2 = false, Generator? randomStart = null)
    {
        if (!(eps >= 0) || !double.IsFinite(eps)) throw new BadInputException($"The ball's radius must be finite and not negative; got {eps}.");
        Eps = eps;
        L2 = l2;
        _origin = origin.detach().clone();
        var start = _origin.clone();
        if (randomStart is not null && eps > 0)
            using (no_grad()) start = Project(start + (rand(start.shape, generator: randomStart) * S(2) - S(1)).to(start.device) * S(eps), _origin, eps, l2);
        _pixels = new Parameter(start);
    }

    /// <inheritdoc/>
    public IReadOnlyList<Parameter> Parameters => [_pixels];
    /// <inheritdoc/>
    public Tensor Image() => _pixels;

    /// <inheritdoc/>
    public void AfterStep()
    {
        using var noGrad = no_grad();
        using var projected = Project(_pixels, _origin, Eps, L2);
        _pixels.copy_(projected);
    }

    /// <summary>Projects onto {‖x − x0‖ ≤ eps} ∩ [0,1] (L∞, or L2 per image).</summary>
    public static Tensor Project(Tensor x, Tensor x0, double eps, bool l2 = false)
    {
        using var noGrad = no_grad();
        if (!l2) return x.maximum(x0 - S(eps)).minimum(x0 + S(eps)).clamp(S(0), S(1));
        using var scope = NewDisposeScope();
        var delta = x - x0;
        var dims = Enumerable.Range(1, (int)delta.dim() - 1).Select(d => (long)d).ToArray();
        var norm = linalg.vector_norm(delta, 2, dims, keepdim: true);
        var factor = (S(eps) / (norm + S(1e-12))).clamp_max(S(1.0));
        return (x0 + delta * factor).clamp(S(0), S(1)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// DeepDream's octave pyramid with detail carry (the google/deepdream notebook's): the photo
/// shrunk by <c>scale</c> per octave, smallest first; each octave starts from its base plus the
/// detail dreamed so far (dreamed minus base, resized up), its pixels clipped to 0..1. The result
/// is the photo plus the detail, at full size.
/// </summary>
internal sealed class OctavePyramid : IParameterization
{
    readonly Tensor _original;
    readonly List<Tensor> _bases = new();
    Tensor? _detail;
    Parameter? _current;
    int _stage = -1;

    /// <summary>The pyramid of <paramref name="photo"/> [1,3,H,W] in 0..1.</summary>
    public OctavePyramid(Tensor photo, int octaves, double scale)
    {
        _original = photo.detach();
        var sizes = Sizes((int)photo.shape[2], (int)photo.shape[3], octaves, scale);
        // Each octave is the previous one shrunk (antialiased), as in the notebook.
        _bases.Add(_original);
        for (int i = sizes.Count - 2; i >= 0; i--) _bases.Insert(0, ImageIO.Resize(_bases[0], sizes[i].H, sizes[i].W));
    }

    /// <summary>Image sizes of the pyramid, smallest first (each octave a rounded 1/scale of the one above).</summary>
    public static List<(int H, int W)> Sizes(int h, int w, int octaves, double scale)
    {
        var sizes = new List<(int, int)> { (h, w) };
        for (int i = 1; i < octaves; i++)
        {
            var (ph, pw) = sizes[^1];
            sizes.Add((Math.Max(1, (int)Math.Floor(ph / scale + 0.5)), Math.Max(1, (int)Math.Floor(pw / scale + 0.5))));
        }
        sizes.Reverse();
        return sizes;
    }

    /// <inheritdoc/>
    public int Stages => _bases.Count;

    /// <inheritdoc/>
    public IReadOnlyList<Parameter> Parameters => _current is null ? throw new InvalidOperationException("No octave has begun.") : [_current];

    /// <inheritdoc/>
    public Tensor Image() => _current ?? throw new InvalidOperationException("No octave has begun.");

    /// <inheritdoc/>
    public void BeginStage(int stage)
    {
        _stage = stage;
        var b = _bases[stage];
        using var noGrad = no_grad();
        // The detail is needed only to start the octave; dropping it then keeps one full-size
        // buffer fewer alive while the octave runs.
        Tensor start;
        if (_detail is null) start = b.clamp(S(0), S(1));
        else
        {
            using var up = ImageIO.Resize(_detail, (int)b.shape[2], (int)b.shape[3]);
            start = (b + up).clamp_(S(0), S(1));
            _detail.Dispose();
            _detail = null;
        }
        _current?.Dispose();
        _current = new Parameter(start);
    }

    /// <inheritdoc/>
    public void AfterStep()
    {
        using var noGrad = no_grad();
        _current!.clamp_(S(0), S(1));
    }

    /// <inheritdoc/>
    public void EndStage(int stage)
    {
        if (stage == Stages - 1) return; // the result is taken from the current image
        using var noGrad = no_grad();
        _detail?.Dispose();
        _detail = _current! - _bases[stage];
    }

    /// <inheritdoc/>
    public Tensor Result()
    {
        using var noGrad = no_grad();
        if (_current is null) return _original.clone();
        return _current.shape[2] == _original.shape[2] && _current.shape[3] == _original.shape[3]
            ? _current.detach().clone()
            : (_original + ImageIO.Resize(_current - _bases[_stage], (int)_original.shape[2], (int)_original.shape[3])).clamp(S(0), S(1));
    }
}
