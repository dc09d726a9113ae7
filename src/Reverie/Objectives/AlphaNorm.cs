using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// Mahendran and Vedaldi's α-norm of the image about mid-gray: mean(|x − ½| / B)^α, with α = 6 and
/// B = ½ by default. A regularizer that keeps pixels inside their range; enter it with a negative
/// weight. Written <c>alpha</c> or <c>alpha(A)</c>.
/// </summary>
internal sealed class AlphaNorm(double alpha = 6, double bound = 0.5) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [];
    /// <inheritdoc/>
    public override bool Tileable => false;

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features) => ((features.Image - S(0.5)).abs() / S(bound)).pow(S(alpha)).mean();

    internal static Objective Parse(string? argument, ObjectiveLanguage.Context _)
    {
        if (string.IsNullOrWhiteSpace(argument)) return new AlphaNorm();
        double a = ObjectiveLanguage.Number(argument, "alpha(A)");
        if (!(a >= 1) || a > 64) throw new BadInputException($"alpha(A) needs A from 1 to 64; got {a}.");
        return new AlphaNorm(a);
    }

    /// <inheritdoc/>
    public override string Describe() => alpha == 6 ? "alpha" : $"alpha({alpha:G4})";
}
