using Reverie.Imaging;
using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Style;

/// <summary>How styled a result is, and how much of the content it kept, measured the same way on any run.</summary>
/// <param name="GramRatio">‖G(result) − G(style)‖ / ‖G(content) − G(style)‖ at <paramref name="StyleLayer"/>: 1 is unstyled, 0 the style's texture exactly.</param>
/// <param name="ContentDistance">‖F(result) − F(content)‖ / ‖F(content)‖ at <paramref name="ContentLayer"/>: 0 is the content unchanged.</param>
/// <param name="StyleLayer">Where the Gram matrices were compared.</param>
/// <param name="ContentLayer">Where the features were compared.</param>
internal sealed record StyleStrength(double GramRatio, double ContentDistance, string StyleLayer, string ContentLayer)
{
    /// <summary>The side all three images are scaled to.</summary>
    public const int Side = 256;

    /// <summary>
    /// Measures <paramref name="result"/> against its content and style, all three scaled to 256 px on the
    /// longer side (aspect kept; <paramref name="square"/> stretches them to 256×256 instead, which changes the
    /// texture that the Gram matrices measure: on coffee.png, 3:2, a fully styled result still scores 0.67),
    /// with Gram = F·Fᵀ / (number of elements of F). The layers are GoogLeNet's inception_3a/output and
    /// inception_4b/output where the network has them, else its middle style layer and its first content layer.
    /// </summary>
    public static StyleStrength Measure(INetwork net, Tensor result, Tensor content, Tensor style, StyleOptions options, bool square = false)
    {
        using var scope = NewDisposeScope();
        string styleLayer = net.HasLayer("inception_3a/output") ? "inception_3a/output" : options.StyleLayers[options.StyleLayers.Count / 2];
        string contentLayer = net.HasLayer("inception_4b/output") ? "inception_4b/output" : options.ContentLayers.Count > 0 ? options.ContentLayers[0] : styleLayer;
        string s = net.ResolveLayer(styleLayer), c = net.ResolveLayer(contentLayer);
        Dictionary<string, Tensor> Of(Tensor image)
        {
            using (no_grad()) return Capture.Features(net, square ? ImageIO.Resize(image.to(net.Device), Side, Side) : Capture.ScaleTo(image.to(net.Device), Side), [s, c]).ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float64));
        }
        var r = Of(result);
        var k = Of(content);
        var y = Of(style);
        var gs = Gram.Of(y[s]);
        double ratio = (Gram.Of(r[s]) - gs).norm().item<double>() / Math.Max((Gram.Of(k[s]) - gs).norm().item<double>(), 1e-30);
        double distance = (r[c] - k[c]).norm().item<double>() / Math.Max(k[c].norm().item<double>(), 1e-30);
        return new StyleStrength(ratio, distance, styleLayer, contentLayer);
    }
}
