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
internal sealed class ContentLoss(string layer, Tensor target, string display) : Objective
{
    readonly Tensor _target = target.detach().to(ScalarType.Float32).clone();
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override bool Tileable => false;
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a) => (a[layer].to(ScalarType.Float32) - _target.to(a[layer].device)).pow(S(2)).mean();
    /// <inheritdoc/>
    public override string Describe() => $"content({display})";
}

/// <summary>Style loss: the mean squared difference between a layer's Gram matrix and a target Gram matrix (enter with a negative weight).</summary>
internal sealed class StyleLoss(string layer, Tensor targetGram, string display) : Objective
{
    readonly Tensor _target = targetGram.detach().to(ScalarType.Float32).clone();
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override bool Tileable => false;
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a) => (Gram.Of(a[layer].to(ScalarType.Float32)) - _target.to(a[layer].device)).pow(S(2)).mean();
    /// <inheritdoc/>
    public override string Describe() => $"style({display})";
}
