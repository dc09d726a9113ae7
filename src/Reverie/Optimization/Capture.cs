using Reverie.Imaging;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>
/// The one capture pass: a reference image's features at named layers, recorded once before an
/// optimization (a guide image's, the content and style images' for style transfer, the photo's
/// for an inversion). The tensors are detached copies in float32, whatever the network computes in.
/// </summary>
internal static class Capture
{
    /// <summary>Runs <paramref name="image"/> [N,3,H,W] through the network and keeps <paramref name="layers"/> (any names; keyed by canonical name).</summary>
    public static Dictionary<string, Tensor> Features(INetwork network, Tensor image, IEnumerable<string> layers)
    {
        var names = layers.Select(network.ResolveLayer).Distinct().ToList();
        var result = new Dictionary<string, Tensor>();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var acts = Forward(network, image.to(network.Device), names);
        foreach (var l in names)
        {
            var t = acts[l].detach();
            result[l] = (t.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? t.to(ScalarType.Float32) : t.clone()).MoveToOuterDisposeScope();
        }
        return result;
    }

    /// <summary>
    /// The network's forward pass, with an image too small for its layers (a kernel or pool larger
    /// than what is left of it) reported in one sentence that names the size, not as libtorch's error.
    /// </summary>
    public static IReadOnlyDictionary<string, Tensor> Forward(INetwork network, Tensor images, IReadOnlyCollection<string> layers)
    {
        // A network that accepts only sizes in steps of some multiple (CNTK's asymmetric padding makes a
        // residual block's two branches disagree on odd sizes) sees the image padded to the next one:
        // the smallest power-of-two step that works, probed on the first failure and remembered.
        int step = SizeStep.TryGetValue(network, out var known) ? known.Value : 1;
        try
        {
            while (true)
            {
                if (images.shape[2] < step || images.shape[3] < step) // more padding than image: not a picture of it any more
                    throw new BadInputException($"An image of {images.shape[3]}x{images.shape[2]} pixels is too small for {network.Name}, which takes sizes in steps of {step}; use a larger image (or fewer octaves, a larger --max-size or --size).");
                try
                {
                    var acts = network.Forward(PadTo(images, step), layers);
                    if (step > 1 && !(known?.Value >= step)) SizeStep.AddOrUpdate(network, new System.Runtime.CompilerServices.StrongBox<int>(step));
                    return acts;
                }
                catch (Exception e) when (step < 64 && e is System.Runtime.InteropServices.ExternalException or ReverieException and not BadInputException
                    && e.Message.Contains("must match the size of tensor", StringComparison.Ordinal))
                {
                    step *= 2;
                }
            }
        }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or ReverieException and not BadInputException && TooSmall(e.Message))
        {
            throw new BadInputException($"An image of {images.shape[3]}x{images.shape[2]} pixels is too small for {network.Name} at {BadInputException.Shown(string.Join(", ", layers), 80)}; use a larger image (or fewer octaves, a larger --max-size or --size).", e);
        }
    }

    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<INetwork, System.Runtime.CompilerServices.StrongBox<int>> SizeStep = new();

    /// <summary>The images padded on the right and at the bottom to the next multiple of <paramref name="step"/> (reflected; repeated where the image is too small to reflect).</summary>
    internal static Tensor PadTo(Tensor images, int step)
    {
        long h = images.shape[2], w = images.shape[3];
        long ph = (step - h % step) % step, pw = (step - w % step) % step;
        if (ph == 0 && pw == 0) return images;
        var mode = ph < h && pw < w ? TorchSharp.PaddingModes.Reflect : TorchSharp.PaddingModes.Replicate;
        return nn.functional.pad(images, [0, pw, 0, ph], mode);
    }

    static bool TooSmall(string message) =>
        message.Contains("too small", StringComparison.OrdinalIgnoreCase)
        || message.Contains("Given input size", StringComparison.Ordinal)
        || message.Contains("Kernel size can't be greater", StringComparison.Ordinal)
        || message.Contains("non-positive", StringComparison.Ordinal);

    /// <summary>The image shrunk (never enlarged) so that its longer side is at most <paramref name="maxSide"/> pixels.</summary>
    public static Tensor Shrink(Tensor image, int maxSide)
    {
        double f = Math.Min(1.0, (double)maxSide / Math.Max(image.shape[2], image.shape[3]));
        return f < 1 ? ImageIO.Resize(image, (int)Math.Round(image.shape[2] * f), (int)Math.Round(image.shape[3] * f)) : image;
    }

    /// <summary>The image scaled so that its longer side is <paramref name="side"/> pixels (at least one pixel each way).</summary>
    public static Tensor ScaleTo(Tensor image, double side)
    {
        double f = side / Math.Max(image.shape[2], image.shape[3]);
        return ImageIO.Resize(image, Math.Max(1, (int)Math.Round(image.shape[2] * f)), Math.Max(1, (int)Math.Round(image.shape[3] * f)));
    }
}
