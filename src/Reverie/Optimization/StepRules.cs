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
        using var noGrad = no_grad();
        // mean |g| through a reduction (no full-size temporary), then one fused in-place update.
        using var norm = linalg.vector_norm(gradient, 1);
        double scale = norm.to(ScalarType.Float64).item<double>() / gradient.numel() + 1e-12;
        parameter.add_(gradient, StepSize / scale);
    }
}
