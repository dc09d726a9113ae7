using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Reverie.Models;

/// <summary>Channel order a network expects.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ChannelOrder>))]
public enum ChannelOrder
{
    /// <summary>Red, green, blue.</summary>
    Rgb,
    /// <summary>Blue, green, red (Caffe models).</summary>
    Bgr,
    /// <summary>One luminance channel.</summary>
    Gray,
}

/// <summary>
/// How a network wants its input. Reverie's engine always holds RGB images in 0..1; the network
/// applies <c>((x * Scale) - Mean) / Std</c> per channel and reorders channels itself.
/// </summary>
public sealed record InputSpec
{
    /// <summary>Native input width in pixels (the size classification resizes to).</summary>
    public int Width { get; init; } = 224;
    /// <summary>Native input height in pixels.</summary>
    public int Height { get; init; } = 224;
    /// <summary>Channel order of the network's input.</summary>
    public ChannelOrder Channels { get; init; } = ChannelOrder.Rgb;
    /// <summary>Multiplier from 0..1 to the network's value range (1 or 255).</summary>
    public float Scale { get; init; } = 1f;
    /// <summary>Per-channel mean in R, G, B order (or one value for gray), in scaled units.</summary>
    public float[] Mean { get; init; } = [0f, 0f, 0f];
    /// <summary>Per-channel standard deviation in R, G, B order, in scaled units.</summary>
    public float[] Std { get; init; } = [1f, 1f, 1f];

    /// <summary>Raises <see cref="BadInputException"/> (prefixed by <paramref name="at"/>) for sizes, scales, means or deviations that cannot work.</summary>
    internal void Check(string at)
    {
        if (Width is < 1 or > 16384 || Height is < 1 or > 16384) throw new BadInputException($"{at}: the input size must be from 1 to 16384 pixels a side; got {Width}x{Height}.");
        if (!float.IsFinite(Scale) || Scale <= 0) throw new BadInputException($"{at}: the input scale must be a positive finite number; got {Scale.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        foreach (var (name, v) in new[] { ("mean", Mean), ("std", Std) })
        {
            if (v is null || (v.Length != 1 && v.Length != 3))
                throw new BadInputException($"{at}: the {name} needs one value or three (R, G, B); got {v?.Length ?? 0}.");
            if (v.Any(x => !float.IsFinite(x))) throw new BadInputException($"{at}: the {name} must hold finite numbers.");
        }
        if (Std.Any(x => x <= 0)) throw new BadInputException($"{at}: every std must be greater than 0 (the input is divided by it); got {string.Join(",", Std.Select(x => x.ToString(System.Globalization.CultureInfo.InvariantCulture)))}.");
    }

    /// <summary>Converts RGB images [N,3,H,W] in 0..1 to what the network takes.</summary>
    public Tensor Preprocess(Tensor rgb)
    {
        if (rgb.dim() != 4 || rgb.shape[1] != 3)
            throw new ArgumentException($"Expected RGB images [N,3,H,W]; got [{string.Join(",", rgb.shape)}].");
        Tensor x = Channels == ChannelOrder.Gray
            ? (rgb[.., 0..1] * S(0.299f) + rgb[.., 1..2] * S(0.587f) + rgb[.., 2..3] * S(0.114f))
            : rgb;
        int c = (int)x.shape[1];
        float[] mean = Fit(Mean, c), std = Fit(Std, c);
        var m = tensor(mean, device: rgb.device).to(rgb.dtype).reshape(1, c, 1, 1);
        var s = tensor(std, device: rgb.device).to(rgb.dtype).reshape(1, c, 1, 1);
        x = (x * S(Scale) - m) / s;
        if (Channels == ChannelOrder.Bgr) x = x.flip(1);
        return x;
    }

    static float[] Fit(float[] v, int c) => v.Length == c ? v : v.Length == 1 ? Enumerable.Repeat(v[0], c).ToArray() :
        c == 1 ? [v.Average()] : throw new BadInputException($"The input spec gives {v.Length} values where {c} channels need one each.");

    /// <summary>Number of channels of the network's input.</summary>
    public int ChannelCount => Channels == ChannelOrder.Gray ? 1 : 3;
}

/// <summary>One tap of a network: a named intermediate tensor that objectives can read.</summary>
/// <param name="Name">Canonical name.</param>
/// <param name="Aliases">Other names that address the same tensor.</param>
/// <param name="Op">The operator that produces it.</param>
/// <param name="Shape">Output shape at the network's native input size.</param>
public sealed record LayerInfo(string Name, IReadOnlyList<string> Aliases, string Op, long[] Shape)
{
    /// <summary>Channel count (dimension 1), or 0 for a scalar.</summary>
    public long Channels => Shape.Length > 1 ? Shape[1] : Shape.Length == 1 ? Shape[0] : 0;
}

/// <summary>
/// A differentiable network with named layers: the one abstraction over every model source.
/// Images enter as RGB [N,3,H,W] in 0..1; the network does its own preprocessing.
/// </summary>
public interface INetwork : IDisposable
{
    /// <summary>The model's name.</summary>
    string Name { get; }
    /// <summary>What the network expects.</summary>
    InputSpec Input { get; }
    /// <summary>Class names, when the network classifies.</summary>
    IReadOnlyList<string>? Labels { get; }
    /// <summary>The layer that holds the class scores.</summary>
    string OutputLayer { get; }
    /// <summary>True when <see cref="OutputLayer"/> already holds probabilities (a trailing softmax).</summary>
    bool OutputIsProbability { get; }
    /// <summary>The layer before the trailing softmax (logits), when there is one.</summary>
    string? LogitsLayer { get; }
    /// <summary>Every tap, with its shape at the native input size.</summary>
    IReadOnlyList<LayerInfo> Layers { get; }
    /// <summary>Canonical name of a layer given any of its names; unknown names raise <see cref="BadInputException"/> with the nearest names.</summary>
    string ResolveLayer(string name);
    /// <summary>Runs the network up to the deepest requested layer and returns those layers' tensors (autograd on).</summary>
    IReadOnlyDictionary<string, Tensor> Forward(Tensor images, IReadOnlyCollection<string> layers);
    /// <summary>The device the weights live on.</summary>
    Device Device { get; }
    /// <summary>Moves the weights to a device and, optionally, to another floating-point precision (float64 for reference comparisons).</summary>
    void To(Device device, ScalarType? floatType = null);
}

/// <summary>Helpers over <see cref="INetwork"/>.</summary>
internal static class NetworkExtensions
{
    /// <summary>Whether <paramref name="name"/> resolves to a layer of the network.</summary>
    public static bool HasLayer(this INetwork net, string name)
    {
        try { net.ResolveLayer(name); return true; }
        catch (BadInputException) { return false; }
    }

    /// <summary>Class probabilities [N,K] for RGB images in 0..1 (resized by the caller).</summary>
    public static Tensor Probabilities(this INetwork net, Tensor images)
    {
        var outs = net.Forward(images, [net.OutputLayer]);
        var y = outs[net.ResolveLayer(net.OutputLayer)].flatten(1);
        return net.OutputIsProbability ? y : y.softmax(1);
    }
}
