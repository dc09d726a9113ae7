namespace Reverie.Optimization;

/// <summary>
/// How many steps each stage takes, how the step size moves over them, and when to stop early.
/// Stages come from the parameterization (the octaves of a pyramid); most have one.
/// </summary>
internal interface ISchedule
{
    /// <summary>Steps in stage <paramref name="stage"/> of <paramref name="stages"/>.</summary>
    int Steps(int stage, int stages);
    /// <summary>The factor on the step rule's step size at a step (1: constant).</summary>
    double Rate(int stage, int step, int steps) => 1;
    /// <summary>Whether to stop before updating, given this step's evaluation.</summary>
    bool Stop(OptimizationStep evaluated) => false;
}

/// <summary>The same number of steps in every stage, at a constant rate.</summary>
internal sealed record FixedSteps(int Count) : ISchedule
{
    /// <inheritdoc/>
    public int Steps(int stage, int stages) => Count;
}

/// <summary>A rate that decays by a half cosine from 1 to <paramref name="Floor"/> over the stage.</summary>
internal sealed record CosineDecay(int Count, double Floor = 0.1) : ISchedule
{
    /// <inheritdoc/>
    public int Steps(int stage, int stages) => Count;
    /// <inheritdoc/>
    public double Rate(int stage, int step, int steps) => Floor + (1 - Floor) * 0.5 * (1 + Math.Cos(Math.PI * step / steps));
}

/// <summary>Another schedule that also stops as soon as <paramref name="Reached"/> holds for a step's evaluation.</summary>
internal sealed record StopWhen(ISchedule Inner, Func<OptimizationStep, bool> Reached) : ISchedule
{
    /// <inheritdoc/>
    public int Steps(int stage, int stages) => Inner.Steps(stage, stages);
    /// <inheritdoc/>
    public double Rate(int stage, int step, int steps) => Inner.Rate(stage, step, steps);
    /// <inheritdoc/>
    public bool Stop(OptimizationStep evaluated) => Inner.Stop(evaluated) || Reached(evaluated);
}
