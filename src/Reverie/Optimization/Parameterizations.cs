using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>How an image is produced from the parameters being optimized.</summary>
public interface IParameterization
{
    /// <summary>The tensors the step rule updates (TorchSharp parameters).</summary>
    IReadOnlyList<Tensor> Parameters { get; }
    /// <summary>The current images, RGB [N,3,H,W] in 0..1, differentiable with respect to <see cref="Parameters"/>.</summary>
    Tensor Image();
    /// <summary>Called after each step (e.g. to project pixels back into 0..1).</summary>
    void AfterStep() { }
}

/// <summary>Raw pixels: the image is the parameter, clipped to 0..1 after each step.</summary>
public sealed class PixelParameterization : IParameterization
{
    readonly Tensor _pixels;

    /// <summary>Starts from <paramref name="initial"/> [N,3,H,W] in 0..1 (copied).</summary>
    public PixelParameterization(Tensor initial)
    {
        _pixels = new TorchSharp.Modules.Parameter(initial.detach().clone());
    }

    /// <summary>Starts from uniform noise in 0..1 drawn from <paramref name="generator"/>.</summary>
    public static PixelParameterization Noise(int batch, int height, int width, Generator generator, Device? device = null) =>
        new(rand(new long[] { batch, 3, height, width }, generator: generator, device: device));

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> Parameters => [_pixels];
    /// <inheritdoc/>
    public Tensor Image() => _pixels;
    /// <inheritdoc/>
    public void AfterStep()
    {
        using var noGrad = no_grad();
        _pixels.clamp_(0, 1);
    }
}

/// <summary>
/// Lucid's image parameterization: a Fourier spectrum scaled by 1/f (so that all frequencies
/// learn at similar rates), turned into an image by an inverse real FFT, with colours decorrelated
/// by the square root of ImageNet's colour correlation, and squashed into 0..1 by a sigmoid.
/// </summary>
public sealed class FourierParameterization : IParameterization
{
    // The square root of the colour correlation matrix of ImageNet images (Lucid's
    // color_correlation_svd_sqrt), normalized by its largest column norm.
    static readonly float[,] ColorSqrt = { { 0.26f, 0.09f, 0.02f }, { 0.27f, 0.00f, -0.05f }, { 0.27f, -0.09f, 0.03f } };

    readonly Tensor _spectrum; // [N,3,H,W/2+1,2]
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
        _spectrum = new TorchSharp.Modules.Parameter(randn(new long[] { batch, 3, height, fw, 2 }, generator: generator, device: device) * 0.01);
        double maxNorm = Enumerable.Range(0, 3).Max(c => Math.Sqrt(Enumerable.Range(0, 3).Sum(r => ColorSqrt[r, c] * ColorSqrt[r, c])));
        var m = new float[9];
        for (int r = 0; r < 3; r++) for (int c = 0; c < 3; c++) m[r * 3 + c] = (float)(ColorSqrt[r, c] / maxNorm);
        _color = tensor(m, device: device).reshape(3, 3);
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> Parameters => [_spectrum];

    /// <inheritdoc/>
    public Tensor Image()
    {
        var complex = view_as_complex(_spectrum * _scale);
        var image = fft.irfft2(complex, s: new long[] { _h, _w }, norm: TorchSharp.FFTNormType.Ortho) / 4.0; // Lucid's "magic" 4
        // Decorrelated colour: each pixel's 3-vector times the normalized colour square root.
        var decorrelated = einsum("nchw,dc->ndhw", image, _color);
        return decorrelated.sigmoid();
    }
}
