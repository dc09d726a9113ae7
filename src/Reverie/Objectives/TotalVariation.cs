using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// Total variation of the image the network sees: a smoothness regularizer, entered with a
/// negative weight (<c>- 0.001*tv</c>). Two normalizations are in use:
/// <list type="bullet">
/// <item><see cref="NeuralStyle"/> (the default, written <c>tv</c>): half the sum of squared
/// differences of neighbouring pixels, on the image scaled to 0..255 (jcjohnson/neural-style's TV loss);</item>
/// <item><see cref="Normalized"/> (written <c>tv(V)</c>): Mahendran and Vedaldi's TV^β with β = 2, the
/// mean over pixels of the squared gradient divided by V², which makes its weight independent of the
/// image size.</item>
/// </list>
/// </summary>
internal sealed class TotalVariation : Objective
{
    readonly double? _v;

    TotalVariation(double? v) => _v = v;

    /// <summary>neural-style's TV: ½·Σ(Δx² + Δy²) on 0..255.</summary>
    public static TotalVariation NeuralStyle() => new(null);

    /// <summary>Mahendran and Vedaldi's TV^β (β = 2): mean(Δx² + Δy²) / V², with V the expected pixel variation.</summary>
    public static TotalVariation Normalized(double v)
    {
        if (!(v > 0) || !double.IsFinite(v)) throw new BadInputException($"tv(V) needs V above 0; got {v}.");
        return new(v);
    }

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [];
    /// <inheritdoc/>
    public override bool Tileable => false;

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features)
    {
        var x = features.Image;
        if (_v is not { } v)
        {
            x = x * S(255);
            var dx = x.narrow(3, 1, x.shape[3] - 1) - x.narrow(3, 0, x.shape[3] - 1);
            var dy = x.narrow(2, 1, x.shape[2] - 1) - x.narrow(2, 0, x.shape[2] - 1);
            return S(0.5) * (dx.pow(S(2)).sum() + dy.pow(S(2)).sum());
        }
        var gx = x.narrow(3, 1, x.shape[3] - 1) - x.narrow(3, 0, x.shape[3] - 1);
        var gy = x.narrow(2, 1, x.shape[2] - 1) - x.narrow(2, 0, x.shape[2] - 1);
        return (gx.narrow(2, 0, gx.shape[2] - 1).pow(S(2)) + gy.narrow(3, 0, gy.shape[3] - 1).pow(S(2))).mean() / S((v * v));
    }

    /// <summary>Parses the language's <c>tv</c> and <c>tv(V)</c>.</summary>
    internal static Objective Parse(string? argument, ObjectiveLanguage.Context _) =>
        string.IsNullOrWhiteSpace(argument) ? NeuralStyle() : Normalized(ObjectiveLanguage.Number(argument, "tv(V)"));

    /// <inheritdoc/>
    public override string Describe() => _v is { } v ? $"tv({v:G4})" : "tv";
}
