using Reverie.Jobs;
using Reverie.Objectives;

namespace Reverie.Visualization;

/// <summary>The options of <c>reverie visualize</c>: an objective, and how to optimize an image for it from noise.</summary>
public sealed record VisualizeJobOptions : JobOptions
{
    /// <summary>The objective, in the objective language.</summary>
    public required string Objective { get; init; }
    /// <summary>Weight of the diversity term across the batch (at the objective's first layer).</summary>
    public double Diversity { get; init; }
    /// <summary>The optimization's settings; its seed and precision are the job's.</summary>
    public VisualizeOptions Visualize { get; init; } = new();

    /// <summary>The settings with the job's seed and precision.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public VisualizeOptions Effective => Visualize with { Seed = Seed, BFloat16 = BFloat16 };

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Effective.Validate();
        Check.Finite(("--diversity", Diversity));
        if (Diversity < 0) throw new BadInputException($"--diversity must not be negative; got {Diversity}.");
        if (Diversity > 0 && Visualize.Batch < 2) throw new BadInputException("--diversity needs --batch 2 or more.");
    }

    /// <inheritdoc/>
    internal override MemoryEstimate? EstimateMemory() => MemoryEstimate.Optimized(Model ?? "googlenet", Visualize.Batch, Visualize.Size);
}

/// <summary>What a visualization reached.</summary>
/// <param name="Model">The model.</param>
/// <param name="Objective">The objective as the language writes it.</param>
/// <param name="Value">Its value at the last step.</param>
internal sealed record VisualizeResults(string Model, string Objective, double Value);

/// <summary><c>reverie visualize</c> as a job: an image (or a batch, written as a grid) that maximizes an objective.</summary>
internal sealed class VisualizeJob : Job<VisualizeJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "visualize";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(VisualizeJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        var options = o.Effective;
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        var objective = ObjectiveLanguage.Parse(net, o.Objective);
        o.Prepare(net);
        if (o.Diversity > 0) objective = objective + o.Diversity * new DiversityObjective(objective.Layers.Concat(objective.InputSizeLayers).First(), "diversity");
        var r = await Task.Run(() => new FeatureVisualizer(net, objective, options).RunFull(c.Steps(0, options.Steps, s => $"step {s.Step}/{s.Steps}"), c.Cancel));
        var picture = options.Batch == 1 ? r.Image : Imaging.Grid.Make([r.Image], (int)Math.Ceiling(Math.Sqrt(options.Batch)));
        c.Save(picture, c.Output, new VisualizeResults(net.Name, objective.Describe(), r.Value), r.Steps, r.Cancelled);
        return new JobResult([c.Output], r.Cancelled ? $"interrupted after {r.Steps} steps: saved {c.Output}" : $"{c.Output} ({objective.Describe()})", r.Cancelled);
    }
}
