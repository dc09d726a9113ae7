using System.Globalization;
using Reverie.Imaging;
using Reverie.Jobs;

namespace Reverie.Training;

/// <summary>The options of <c>reverie evaluate</c>: a classifier and the labelled images to measure it on.</summary>
internal sealed record EvaluateJobOptions : JobOptions
{
    /// <summary>fashion-mnist, textures, or an ImageFolder (absolute in recipes) whose subfolder names are the model's class names.</summary>
    public required string Data { get; init; }
    /// <summary><c>test</c> or <c>train</c> (fashion-mnist and textures; a folder is used whole).</summary>
    public string Split { get; init; } = "test";
    /// <summary>Only these classes, comma-separated; null for all.</summary>
    public string? Classes { get; init; }
    /// <summary>At most this many images per class (a seeded, even draw); null for all.</summary>
    public int? Limit { get; init; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is null) throw new BadInputException("evaluate needs a model (--model).");
        if (Split is not ("test" or "train")) throw new BadInputException($"--split must be test or train; got '{BadInputException.Shown(Split)}'.");
        if (Limit is < 1) throw new BadInputException($"--limit must be at least 1; got {Limit}.");
    }
}

/// <summary>One class of an evaluation.</summary>
/// <param name="Class">The class's name.</param>
/// <param name="Images">Its images.</param>
/// <param name="Accuracy">The share of them classified as the class (NaN with no images).</param>
/// <param name="ConfusedWith">The class its images were most often taken for, and how often; null when never wrong.</param>
/// <param name="Confused">How many of its images went to <paramref name="ConfusedWith"/>.</param>
internal sealed record ClassEvaluation(string Class, long Images, double Accuracy, string? ConfusedWith, long Confused);

/// <summary>What <c>reverie evaluate</c> measured.</summary>
/// <param name="Model">The model.</param>
/// <param name="Data">The data set's name.</param>
/// <param name="Images">Images classified.</param>
/// <param name="Accuracy">The share classified correctly.</param>
/// <param name="Loss">Mean cross-entropy over the data set's classes.</param>
/// <param name="Classes">Per class.</param>
/// <param name="Confusion">Rows: true class; columns: predicted, in the order of <paramref name="Classes"/>.</param>
internal sealed record EvaluateResults(string Model, string Data, long Images, double Accuracy, double Loss, IReadOnlyList<ClassEvaluation> Classes, IReadOnlyList<long[]> Confusion);

/// <summary>
/// <c>reverie evaluate</c> as a job: accuracy, per-class accuracy and the confusion matrix of a
/// classifier on labelled images. With an output (a PNG) it draws the confusion matrix there, its
/// recipe inside and beside it; without one (an empty <see cref="JobContext.Output"/>) it writes nothing
/// and the results are the product.
/// </summary>
internal sealed class EvaluateJob : Job<EvaluateJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "evaluate";

    /// <inheritdoc/>
    internal override bool OutputOptional => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(EvaluateJobOptions o, JobContext c)
    {
        bool draw = c.Output.Length > 0;
        if (draw && !c.Output.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must be a .png file; got '{BadInputException.Shown(c.Output)}'.");
        using var net = await c.OpenModelAsync(o.Model!);
        var set = Datasets.Open(o.Data, o.Split == "test" && !Directory.Exists(o.Data), 0, net.Input.Height);
        if (o.Classes is { } only) set = Datasets.SelectClasses(set, only.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        if (o.Limit is { } limit) set = Datasets.PerClass(set, limit, 0);
        Evaluation e;
        try
        {
            e = await Task.Run(() => Trainer.Evaluate(net, set, progress: new SyncProgress<(int Done, int Total)>(d =>
                c.Report(new JobEvent { Stage = $"evaluating {net.Name}", Step = d.Done, Total = set.Count })), cancel: c.Cancel));
        }
        catch (OperationCanceledException) when (c.Cancel.IsCancellationRequested)
        {
            return new JobResult([], "interrupted before every image was classified: nothing saved", true);
        }
        int k = e.Classes.Count;
        var per = e.PerClass;
        var classes = Enumerable.Range(0, k).Select(i =>
        {
            long n = Enumerable.Range(0, k).Sum(j => e.Confusion[i, j]);
            int worst = Enumerable.Range(0, k).Where(j => j != i).OrderByDescending(j => e.Confusion[i, j]).FirstOrDefault(-1);
            bool wrong = worst >= 0 && e.Confusion[i, worst] > 0;
            return new ClassEvaluation(e.Classes[i], n, per[i], wrong ? e.Classes[worst] : null, wrong ? e.Confusion[i, worst] : 0);
        }).ToList();
        var confusion = Enumerable.Range(0, k).Select(i => Enumerable.Range(0, k).Select(j => e.Confusion[i, j]).ToArray()).ToList();
        var results = new EvaluateResults(net.Name, set.Name, e.Total, e.Accuracy, e.Loss, classes, confusion);
        string text = $"accuracy {e.Accuracy.ToString("P2", CultureInfo.InvariantCulture)} on {e.Total} images of {set.Name}; mean cross-entropy {e.Loss.ToString("0.0000", CultureInfo.InvariantCulture)}";
        if (!draw) return new JobResult([], text, false, results);
        using var picture = ImageIO.Decode(TrainingJob.ConfusionPng($"{net.Name} on {set.Name}", e), "the confusion matrix");
        c.Save(picture, c.Output, results, (int)Math.Min(int.MaxValue, e.Total));
        return new JobResult([c.Output], $"{text}\nconfusion matrix: {c.Output}", false, results);
    }
}
