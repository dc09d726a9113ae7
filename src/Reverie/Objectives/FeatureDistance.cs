using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// The relative squared distance of a layer's features to captured target features,
/// ‖Φ(x) − Φ₀‖² / ‖Φ₀‖² (representation inversion's data term); enter it with a negative weight.
/// </summary>
internal sealed class FeatureDistance : Objective
{
    readonly Tensor _target;
    readonly double _norm;
    readonly string _layer, _display;

    /// <summary>The distance to <paramref name="target"/> (copied) at <paramref name="layer"/> (canonical name).</summary>
    public FeatureDistance(string layer, Tensor target, string? display = null)
    {
        _layer = layer;
        _display = display ?? layer;
        _target = target.detach().to(ScalarType.Float32).clone();
        _norm = _target.pow(S(2)).sum().to(ScalarType.Float64).item<double>() + 1e-12;
    }

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [_layer];
    /// <inheritdoc/>
    public override bool Tileable => false;

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features)
    {
        var phi = features[_layer];
        return (phi - _target.to(phi.device).to(phi.dtype)).pow(S(2)).sum() / S(_norm);
    }

    /// <inheritdoc/>
    public override string Describe() => $"distance({_display})";
}
