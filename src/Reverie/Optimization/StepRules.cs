using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Reverie.Optimization;

/// <summary>
/// How parameters move, given the gradient of the loss (minus the objective) in their
/// <c>.grad</c>. <see cref="ImageOptimizer"/> calls <see cref="Begin"/> once per stage, then
/// <see cref="Step"/> once per step with the schedule's rate factor.
/// </summary>
internal interface IStepRule : IDisposable
{
    /// <summary>Starts (or restarts, at a new stage) on these parameters, dropping any state.</summary>
    void Begin(IReadOnlyList<Parameter> parameters);

    /// <summary>
    /// Whether the rule evaluates the objective itself, possibly more than once a step (L-BFGS):
    /// then <see cref="Step"/> gets a closure that zeroes the gradients, evaluates and back-propagates,
    /// returning the loss.
    /// </summary>
    bool UsesClosure => false;

    /// <summary>One update; <paramref name="rate"/> multiplies the rule's step size (1 unless the schedule decays it).</summary>
    void Step(double rate, Func<double>? closure);

    void IDisposable.Dispose() { }
}

/// <summary>DeepDream's step: <c>x += step · g / mean|g|</c> (g the objective's gradient).</summary>
internal sealed class NormalizedGradientStep(double stepSize) : IStepRule
{
    IReadOnlyList<Parameter> _ps = [];
    /// <summary>The step size in the parameter's units.</summary>
    public double StepSize { get; } = stepSize;

    /// <inheritdoc/>
    public void Begin(IReadOnlyList<Parameter> parameters) => _ps = parameters;

    /// <inheritdoc/>
    public void Step(double rate, Func<double>? closure)
    {
        using var noGrad = no_grad();
        foreach (var p in _ps)
        {
            if (p.grad is not { } g) continue;
            // mean |g| through a reduction (no full-size temporary), then one fused in-place update.
            using var norm = linalg.vector_norm(g, 1);
            double scale = norm.to(ScalarType.Float64).item<double>() / g.numel() + 1e-12;
            p.add_(g, S(-StepSize * rate / scale));
        }
    }
}

/// <summary>
/// The sign step of FGSM, BIM and PGD: <c>x += α·sign(g)</c>; with momentum (MI-FGSM) the sign of
/// an accumulated gradient <c>m = μ·m + g / mean|g|</c>, the mean taken per image.
/// </summary>
internal sealed class SignStep(double stepSize, double? momentum = null) : IStepRule
{
    IReadOnlyList<Parameter> _ps = [];
    readonly List<Tensor> _velocity = new();

    /// <inheritdoc/>
    public void Begin(IReadOnlyList<Parameter> parameters)
    {
        _ps = parameters;
        foreach (var v in _velocity) v.Dispose();
        _velocity.Clear();
        if (momentum is not null) foreach (var p in parameters) _velocity.Add(zeros_like(p).DetachFromDisposeScope());
    }

    /// <inheritdoc/>
    public void Step(double rate, Func<double>? closure)
    {
        using var noGrad = no_grad();
        for (int i = 0; i < _ps.Count; i++)
        {
            if (_ps[i].grad is not { } g) continue;
            Tensor direction = g;
            if (momentum is { } mu)
            {
                var dims = Enumerable.Range(1, (int)g.dim() - 1).Select(d => (long)d).ToArray();
                using var l1 = g.abs().mean(dims, keepdim: true) + S(1e-12);
                _velocity[i].mul_(S(mu)).add_(g / l1);
                direction = _velocity[i];
            }
            using var s = direction.sign();
            _ps[i].add_(s, S(-stepSize * rate));
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var v in _velocity) v.Dispose();
        _velocity.Clear();
    }
}

/// <summary>PGD-L2's step: <c>x += α · g / ‖g‖₂</c>, the norm taken per image.</summary>
internal sealed class L2Step(double stepSize) : IStepRule
{
    IReadOnlyList<Parameter> _ps = [];

    /// <inheritdoc/>
    public void Begin(IReadOnlyList<Parameter> parameters) => _ps = parameters;

    /// <inheritdoc/>
    public void Step(double rate, Func<double>? closure)
    {
        using var noGrad = no_grad();
        foreach (var p in _ps)
        {
            if (p.grad is not { } g) continue;
            using var scope = NewDisposeScope();
            var dims = Enumerable.Range(1, (int)g.dim() - 1).Select(d => (long)d).ToArray();
            var norm = linalg.vector_norm(g, 2, dims, keepdim: true) + S(1e-12);
            p.add_(g / norm, S(-stepSize * rate));
        }
    }

    void IDisposable.Dispose() { }
}

/// <summary>A rule that wraps one of TorchSharp's optimizers (built anew at each stage).</summary>
internal abstract class TorchOptimizerStep : IStepRule
{
    optim.Optimizer? _optimizer;
    IReadOnlyList<Parameter> _ps = [];

    /// <summary>The base learning rate.</summary>
    public double LearningRate { get; }

    /// <summary>A rule with base learning rate <paramref name="learningRate"/>.</summary>
    protected TorchOptimizerStep(double learningRate) => LearningRate = learningRate;

    /// <summary>Creates the optimizer.</summary>
    protected abstract optim.Optimizer Create(IReadOnlyList<Parameter> parameters);

    /// <inheritdoc/>
    public virtual bool UsesClosure => false;

    /// <inheritdoc/>
    public void Begin(IReadOnlyList<Parameter> parameters)
    {
        _optimizer?.Dispose();
        _ps = parameters;
        _optimizer = Create(parameters);
    }

    /// <inheritdoc/>
    public void Step(double rate, Func<double>? closure)
    {
        var o = _optimizer ?? throw new InvalidOperationException("Begin was not called.");
        foreach (var g in o.ParamGroups) g.LearningRate = LearningRate * rate;
        if (closure is null) o.step();
        else o.step(() => tensor(closure()));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _optimizer?.Dispose();
        _optimizer = null;
    }
}

/// <summary>Adam (TorchSharp's own), as Lucid and the inversion use it.</summary>
internal sealed class AdamStep(double learningRate) : TorchOptimizerStep(learningRate)
{
    /// <inheritdoc/>
    protected override optim.Optimizer Create(IReadOnlyList<Parameter> parameters) => optim.Adam(parameters.ToList(), LearningRate);
}

/// <summary>Plain gradient descent on the loss (TorchSharp's SGD without momentum), as dreaming toward a target does.</summary>
internal sealed class GradientDescentStep(double learningRate, double momentum = 0) : TorchOptimizerStep(learningRate)
{
    /// <inheritdoc/>
    protected override optim.Optimizer Create(IReadOnlyList<Parameter> parameters) => optim.SGD(parameters.ToList(), LearningRate, momentum);
}

/// <summary>
/// L-BFGS (TorchSharp's own, neural-style's default): one iteration per step, so that progress and
/// cancellation are seen between iterations; the curvature history persists across steps.
/// </summary>
internal sealed class LbfgsStep(double learningRate = 1, int history = 100) : TorchOptimizerStep(learningRate)
{
    /// <inheritdoc/>
    public override bool UsesClosure => true;
    /// <inheritdoc/>
    protected override optim.Optimizer Create(IReadOnlyList<Parameter> parameters) =>
        optim.LBFGS(parameters.ToList(), lr: LearningRate, max_iter: 1, history_size: history);
}

/// <summary>The step rules a command can be told to use by name (<c>--step</c>).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<StepKind>))]
public enum StepKind
{
    /// <summary>Adam.</summary>
    Adam,
    /// <summary>DeepDream's normalized gradient: the rate is the step in 0..1 pixel units per mean |g|.</summary>
    Normalized,
    /// <summary>L-BFGS (the rate is its learning rate, 1 as a rule).</summary>
    Lbfgs,
    /// <summary>Plain gradient descent.</summary>
    Sgd,
    /// <summary>The sign of the gradient.</summary>
    Sign,
}

/// <summary>Makes step rules by name.</summary>
internal static class StepRules
{
    /// <summary>The rule <paramref name="kind"/> at rate <paramref name="rate"/>.</summary>
    public static IStepRule Create(StepKind kind, double rate) => kind switch
    {
        StepKind.Adam => new AdamStep(rate),
        StepKind.Normalized => new NormalizedGradientStep(rate),
        StepKind.Lbfgs => new LbfgsStep(rate),
        StepKind.Sgd => new GradientDescentStep(rate),
        StepKind.Sign => new SignStep(rate),
        _ => throw new BadInputException($"Unknown step rule {kind}."),
    };

    /// <summary>Parses <c>adam</c>, <c>normalized</c>, <c>lbfgs</c>, <c>sgd</c> or <c>sign</c>.</summary>
    public static StepKind Parse(string text) => Enum.TryParse<StepKind>(text, ignoreCase: true, out var k) && Enum.IsDefined(k)
        ? k : throw new BadInputException($"--step must be adam, normalized, lbfgs, sgd or sign; got '{BadInputException.Shown(text)}'.");
}
