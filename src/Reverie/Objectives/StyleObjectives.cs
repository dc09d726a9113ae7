using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>Gram matrices of feature maps, normalized by C·H·W.</summary>
internal static class Gram
{
    /// <summary>[N,C,H,W] → [N,C,C], F·Fᵀ / (C·H·W).</summary>
    public static Tensor Of(Tensor features)
    {
        long n = features.shape[0], c = features.shape[1];
        var f = features.reshape(n, c, -1);
        return matmul(f, f.transpose(1, 2)) / S((c * f.shape[2]));
    }
}

/// <summary>Content loss: the mean squared difference between a layer's features and a target's (enter with a negative weight).</summary>
internal sealed class ContentLoss(string layer, Tensor target, string display, double? normalizedWeight = null) : Objective
{
    readonly Tensor _target = target.detach().to(ScalarType.Float32).clone();
    // Normalized: divided by the target's mean square (times the layer's share), so that the loss is relative.
    readonly double _scale = normalizedWeight is { } w ? w / Math.Max(target.detach().to(ScalarType.Float32).pow(S(2)).mean().item<float>(), 1e-12) : 1;
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override bool Tileable => false;
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a)
    {
        var d = (a[layer].to(ScalarType.Float32) - _target.to(a[layer].device)).pow(S(2)).mean();
        return _scale == 1 ? d : d * S(_scale);
    }
    /// <inheritdoc/>
    public override string Describe() => $"content({display})";
}

/// <summary>Style loss: the mean squared difference between a layer's Gram matrix and a target Gram matrix (enter with a negative weight).</summary>
internal sealed class StyleLoss(string layer, Tensor targetGram, string display, double? normalizedWeight = null) : Objective
{
    readonly Tensor _target = targetGram.detach().to(ScalarType.Float32).clone();
    // Normalized: divided by the style Gram's mean square (times the layer's share).
    readonly double _scale = normalizedWeight is { } w ? w / Math.Max(targetGram.detach().to(ScalarType.Float32).pow(S(2)).mean().item<float>(), 1e-30) : 1;
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override bool Tileable => false;
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a)
    {
        var d = (Gram.Of(a[layer].to(ScalarType.Float32)) - _target.to(a[layer].device)).pow(S(2)).mean();
        return _scale == 1 ? d : d * S(_scale);
    }
    /// <inheritdoc/>
    public override string Describe() => $"style({display})";
}
