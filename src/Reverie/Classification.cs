using Reverie.Imaging;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie;

/// <summary>One predicted class.</summary>
/// <param name="Index">Class index.</param>
/// <param name="Label">Class name (or the index as text when the model has no labels).</param>
/// <param name="Probability">Probability in 0..1.</param>
public sealed record Prediction(int Index, string Label, float Probability);

/// <summary>Classifies images with a network.</summary>
public static class Classifier
{
    /// <summary>Resizes an RGB image [1,3,H,W] to the network's input size and returns the top-K classes.</summary>
    public static IReadOnlyList<Prediction> Classify(INetwork net, Tensor image, int top = 5)
    {
        if (top <= 0) throw new BadInputException($"--top must be at least 1; got {top}.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = ImageIO.Resize(image.to(net.Device), net.Input.Height, net.Input.Width);
        var p = net.Probabilities(x)[0].cpu();
        int k = (int)Math.Min(top, p.shape[0]);
        var (values, indices) = p.topk(k);
        var v = values.data<float>().ToArray();
        var i = indices.data<long>().ToArray();
        return Enumerable.Range(0, k).Select(j => new Prediction((int)i[j],
            net.Labels is { } l && i[j] < l.Count ? l[(int)i[j]] : i[j].ToString(System.Globalization.CultureInfo.InvariantCulture), v[j])).ToList();
    }
}
