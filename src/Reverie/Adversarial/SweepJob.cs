using System.Globalization;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Training;

namespace Reverie.Adversarial;

/// <summary>The options of <c>reverie attack sweep</c>: a model, labelled images, the budgets and the step counts.</summary>
internal sealed record SweepJobOptions : JobOptions
{
    /// <summary>Labelled images: fashion-mnist, textures or an ImageFolder (absolute in recipes); the test split where there is one.</summary>
    public required string Data { get; init; }
    /// <summary>The budgets, in 0..1 pixel units.</summary>
    public IReadOnlyList<double> Eps { get; init; } = [0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3];
    /// <summary>Step counts: 1 is FGSM, more is BIM with step eps/T.</summary>
    public IReadOnlyList<int> Steps { get; init; } = [1, 10];
    /// <summary>A second model to craft the changes on (black-box transfer); null for none.</summary>
    public string? Surrogate { get; init; }
    /// <summary>Only these classes, comma-separated; null for all.</summary>
    public string? Classes { get; init; }
    /// <summary>At most this many images per class; null for all.</summary>
    public int? Limit { get; init; }

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), .. Surrogate is { } s && File.Exists(s) ? [s] : Array.Empty<string>()];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is null) throw new BadInputException("attack sweep needs a model (--model).");
        if (Eps.Count == 0 || Eps.Any(e => !(e >= 0 && e <= 1))) throw new BadInputException("--eps values must be from 0 to 1.");
        if (Steps.Count == 0 || Steps.Any(t => t is < 1 or > 10000)) throw new BadInputException("--steps values must be from 1 to 10000.");
        if (Limit is < 1) throw new BadInputException($"--limit must be at least 1; got {Limit}.");
    }

    /// <summary>Opens <paramref name="source"/> at <paramref name="net"/>'s input size (the test split where there is one), restricted to <paramref name="classes"/> and <paramref name="limit"/> images per class.</summary>
    internal static IImageDataset OpenData(string source, INetwork net, string? classes, int? limit)
    {
        var set = Datasets.Open(source, !Directory.Exists(source), 0, net.Input.Height);
        if (classes is not null) set = Datasets.SelectClasses(set, classes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        if (limit is { } l) set = Datasets.PerClass(set, l, 0);
        return set;
    }
}

/// <summary>What a sweep measured: the model, the data, and accuracy per kind, budget and step count.</summary>
internal sealed record SweepResults(string Model, string? Surrogate, string Data, int Images, IReadOnlyList<RobustnessResult> Rows);

/// <summary>
/// <c>reverie attack sweep</c> as a job: accuracy against eps at each number of steps, white-box,
/// transferred from a surrogate, and under random sign noise of the same size
/// (<see cref="Robustness.Sweep"/>). The output is the CSV (its recipe beside it); the plot goes beside
/// it as OUT.png.
/// </summary>
internal sealed class SweepJob : Job<SweepJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "attack sweep";

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(SweepJobOptions o, JobContext c)
    {
        if (!c.Output.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must be a .csv file; got '{BadInputException.Shown(c.Output)}'.");
        string plot = Path.ChangeExtension(c.Output, ".png");
        c.CheckOutput(plot, sidecar: false);
        using var net = await c.OpenModelAsync(o.Model!);
        using var surrogate = o.Surrogate is { } s ? await c.OpenModelAsync(s) : null;
        var set = SweepJobOptions.OpenData(o.Data, net, o.Classes, o.Limit);
        List<RobustnessResult> rows;
        try
        {
            rows = await Task.Run(() => Robustness.Sweep(net, surrogate, set, o.Eps, o.Steps, o.Seed,
                new SyncProgress<(int Done, int Total)>(d => c.Report(new JobEvent { Stage = $"sweeping {set.Count} images", Step = d.Done, Total = d.Total })), c.Cancel));
        }
        catch (OperationCanceledException) when (c.Cancel.IsCancellationRequested)
        {
            return new JobResult([], "interrupted before the sweep ended: nothing saved", true);
        }
        var results = new SweepResults(net.Name, surrogate?.Name, set.Name, set.Count, rows);
        c.SaveFile(System.Text.Encoding.UTF8.GetBytes(Robustness.Csv(rows)), c.Output, results, rows.Count);
        c.SaveExtraPng(Robustness.SweepPlot($"{net.Name} on {set.Name} ({set.Count} images){(surrogate is null ? "" : $", surrogate {surrogate.Name}")}", rows), plot);
        return new JobResult([c.Output, plot], $"{c.Output}, {plot}", false, results);
    }
}
