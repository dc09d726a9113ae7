using Reverie.Jobs;
using Reverie.Training;

namespace Reverie.Tests.Infrastructure;

/// <summary>Runs the train job in-process, as the CLI does, with its log lines and cancellation.</summary>
internal static class TrainingRun
{
    /// <summary>Trains into the checkpoint <paramref name="output"/> (a stem); the job's result, its results record when it finished.</summary>
    public static (JobResult Result, TrainingResults? Results) Run(TrainingJobOptions options, string output, Action<string>? log = null, CancellationToken cancel = default)
    {
        var job = new TrainingJob();
        var context = new JobContext
        {
            Output = output + ".json", Recipe = JobCatalog.RecipeFor(job, options), Cancel = cancel,
            Events = new SyncProgress<JobEvent>(e => { if (e.Kind == JobEventKind.Log && e.Message is { } m) log?.Invoke(m); }),
        };
        var result = job.RunAsync(options, context).GetAwaiter().GetResult();
        return (result, result.Results as TrainingResults);
    }

    /// <summary>Trains and returns the results; fails if the run did not finish.</summary>
    public static TrainingResults Finished(TrainingJobOptions options, string output) =>
        Run(options, output).Results ?? throw new InvalidOperationException("the training did not finish");
}
