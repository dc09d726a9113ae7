namespace Reverie.Jobs;

/// <summary>What a job produced.</summary>
/// <param name="Files">The files written, the main one first.</param>
/// <param name="Summary">One line for the user.</param>
/// <param name="Interrupted">Whether cancellation cut it short (the files hold what was done).</param>
/// <param name="Results">What the job measured (the record its recipe holds as results), for displays.</param>
public sealed record JobResult(IReadOnlyList<string> Files, string Summary, bool Interrupted = false, object? Results = null);

/// <summary>A long operation: options in, events out, files and a recipe as the result.</summary>
public interface IJob
{
    /// <summary>The command name, as recipes record it (<c>dream</c>, <c>visualize</c> ...).</summary>
    string Kind { get; }
    /// <summary>The options record's type.</summary>
    Type OptionsType { get; }
    /// <summary>Runs the job; <see cref="BadInputException"/> for bad options, <see cref="ReverieException"/> for failures.</summary>
    Task<JobResult> RunAsync(JobOptions options, JobContext context);
}

/// <summary>A job with a typed options record.</summary>
public abstract class Job<TOptions> : IJob where TOptions : JobOptions
{
    /// <inheritdoc/>
    public abstract string Kind { get; }
    /// <inheritdoc/>
    public Type OptionsType => typeof(TOptions);
    /// <inheritdoc/>
    public async Task<JobResult> RunAsync(JobOptions options, JobContext context)
    {
        var o = options as TOptions ?? throw new ArgumentException($"A {Kind} job takes {typeof(TOptions).Name}, not {options.GetType().Name}.");
        context.Device = o.CheckRuntime(Kind, HonoursBFloat16);
        o.Validate();
        MemoryBudget.Check(o.EstimateMemory(), Kind);
        context.Inputs = [.. o.InputFiles()];
        if (!(OutputOptional && context.Output.Length == 0)) context.CheckOutput(context.Output);
        var result = await RunAsync(o, context);
        return context.NothingSaved ? new JobResult([], "interrupted before the first step: nothing saved", true) : result;
    }
    /// <summary>Whether the job runs its network in bfloat16 when asked (<see cref="JobOptions.Precision"/>); the others refuse it.</summary>
    internal virtual bool HonoursBFloat16 => false;
    /// <summary>Whether the job may run with no output (an empty <see cref="JobContext.Output"/>): a measurement whose results are the product.</summary>
    internal virtual bool OutputOptional => false;
    /// <summary>Runs the job with validated options.</summary>
    protected abstract Task<JobResult> RunAsync(TOptions options, JobContext context);
}

