using System.Globalization;
using Reverie.Jobs;
using Reverie.Objectives;

namespace Reverie.Adversarial;

/// <summary>The options of <c>reverie attack --data</c>: one attack over a labelled data set.</summary>
internal sealed record AttackDataJobOptions : JobOptions
{
    /// <summary>Labelled images: fashion-mnist, textures or an ImageFolder (absolute in recipes); the test split where there is one.</summary>
    public required string Data { get; init; }
    /// <summary>Only these classes, comma-separated; null for all.</summary>
    public string? Classes { get; init; }
    /// <summary>At most this many images per class; null for all.</summary>
    public int? Limit { get; init; }
    /// <summary>The attack (its seed is the job's; its target is <see cref="TargetClass"/>).</summary>
    public AttackOptions Attack { get; init; } = new();
    /// <summary>A second model to craft the changes on (black-box transfer); null to attack the model itself.</summary>
    public string? Surrogate { get; init; }
    /// <summary>A targeted attack's class (name or index, in the crafting model's labels); null for untargeted.</summary>
    public string? TargetClass { get; init; }

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), .. Surrogate is { } s && File.Exists(s) ? [s] : Array.Empty<string>()];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is null) throw new BadInputException("attack --data needs a model (--model).");
        if (Limit is < 1) throw new BadInputException($"--limit must be at least 1; got {Limit}.");
        (Attack with { Seed = Seed }).Validate();
    }
}

/// <summary>What an attack on a data set measured: the models, the data, and the attack's result.</summary>
internal sealed record AttackDataResults(string Model, string? Surrogate, string Data, string Method, string ThreatModel, int Steps, RobustnessResult Result);

/// <summary>
/// <c>reverie attack --data</c> as a job: one attack (white-box, or transferred from a surrogate)
/// over a labelled data set, measuring clean and robust accuracy, success rate and confidence
/// (<see cref="Robustness.Evaluate"/>). With an output it writes the row as CSV, its recipe beside it;
/// without one (an empty <see cref="JobContext.Output"/>) the results are the product.
/// </summary>
internal sealed class AttackDataJob : Job<AttackDataJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "attack data";

    /// <inheritdoc/>
    internal override bool OutputOptional => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(AttackDataJobOptions o, JobContext c)
    {
        bool write = c.Output.Length > 0;
        if (write && !c.Output.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"With --data, --output must be a .csv file; got '{BadInputException.Shown(c.Output)}'.");
        using var net = await c.OpenModelAsync(o.Model!);
        using var craft = o.Surrogate is { } s ? await c.OpenModelAsync(s) : null;
        var crafter = craft ?? net;
        int? target = o.TargetClass is { } t ? ((ClassObjective)ObjectiveLanguage.Parse(crafter, "class:" + t)).Index : null;
        var options = o.Attack with { Target = target, Seed = o.Seed };
        options.Validate();
        var set = SweepJobOptions.OpenData(o.Data, crafter, o.Classes, o.Limit);
        var kind = craft is null ? PerturbationKind.WhiteBox : PerturbationKind.Transfer;
        string method = AttackMethods.Name(options.Method);
        RobustnessResult r;
        try
        {
            r = await Task.Run(() => Robustness.Evaluate(net, crafter, set, kind, options,
                progress: new SyncProgress<int>(d => c.Report(new JobEvent { Stage = $"{method} eps {options.Eps.ToString(CultureInfo.InvariantCulture)}", Step = d, Total = set.Count })), cancel: c.Cancel));
        }
        catch (OperationCanceledException) when (c.Cancel.IsCancellationRequested)
        {
            return new JobResult([], "interrupted before every image was attacked: nothing saved", true);
        }
        bool blackBox = AttackMethods.BlackBox(options.Method) && craft is null;
        string threat = blackBox ? (options.Method == AttackMethod.Square ? "black-box (scores only)" : "black-box (labels only)") : Robustness.Name(kind);
        var results = new AttackDataResults(net.Name, craft?.Name, set.Name, method, threat, options.EffectiveSteps, r);
        string text = $"{threat} {method} ({(AttackMethods.BlackBox(options.Method) ? "a budget of " + options.EffectiveSteps + " queries" : "T=" + options.EffectiveSteps)}, eps {options.Eps.ToString(CultureInfo.InvariantCulture)}) on {net.Name}{(craft is null ? "" : $", crafted on {craft.Name}")}: accuracy {r.CleanAccuracy.ToString("P2", CultureInfo.InvariantCulture)} -> {r.Accuracy.ToString("P2", CultureInfo.InvariantCulture)} over {r.Count} images of {set.Name}";
        if (!write) return new JobResult([], text, false, results);
        c.SaveFile(System.Text.Encoding.UTF8.GetBytes(Robustness.Csv([r])), c.Output, results, r.Count);
        return new JobResult([c.Output], $"{text}\n{c.Output}", false, results);
    }
}
