using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>How parameters move given their gradient (ascent: the objective is maximized).</summary>
public interface IStepRule
{
    /// <summary>Updates <paramref name="parameter"/> in place from <paramref name="gradient"/>.</summary>
    void Step(Tensor parameter, Tensor gradient);
}

/// <summary>DeepDream's step: <c>x += step · g / mean|g|</c>.</summary>
public sealed class NormalizedGradientStep(double stepSize) : IStepRule
{
    /// <summary>The step size in the parameter's units.</summary>
    public double StepSize { get; } = stepSize;

    /// <inheritdoc/>
    public void Step(Tensor parameter, Tensor gradient)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scale = gradient.abs().mean() + 1e-12;
        parameter.add_(gradient * (StepSize / scale));
    }
}
