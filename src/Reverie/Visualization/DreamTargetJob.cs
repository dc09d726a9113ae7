using System.Globalization;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Objectives;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>The options of <c>reverie dream-target</c>: a class to reach, with what probability, from where.</summary>
public sealed record DreamTargetJobOptions : JobOptions
{
    /// <summary><c>class:NAME</c> or <c>class:INDEX</c>, optionally <c>=P</c> for the target probability (default 1).</summary>
    public required string Target { get; init; }
    /// <summary><c>noise</c>, or an image to start from (an absolute path in recipes).</summary>
    public string From { get; init; } = "noise";
    /// <summary>The descent's settings.</summary>
    public TargetDreamOptions Descent { get; init; } = new();

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() => [.. base.InputFiles(), .. From == "noise" ? Array.Empty<string>() : [From]];

    /// <summary>The class term and the probability, parsed from <see cref="Target"/>.</summary>
    public (string Class, double P) ParseTarget()
    {
        string spec = Target;
        double prob = 1;
        int eq = spec.LastIndexOf('=');
        if (eq > 0)
        {
            if (!double.TryParse(spec[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out prob) || !(prob > 0) || prob > 1)
                throw new BadInputException($"--target '{BadInputException.Shown(spec)}': the probability after '=' must be above 0 and at most 1.");
            spec = spec[..eq];
        }
        if (!spec.StartsWith("class:", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--target '{BadInputException.Shown(spec)}' must be class:NAME or class:INDEX.");
        return (spec, prob);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Descent.Validate();
        ParseTarget();
    }
}

/// <summary>What a dream toward a target reached.</summary>
internal sealed record DreamTargetResults(string Model, string Target, double P, double Reached, int Steps);

/// <summary><c>reverie dream-target</c> as a job: pixels pushed by gradient descent until the network reports the class.</summary>
internal sealed class DreamTargetJob : Job<DreamTargetJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "dream-target";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(DreamTargetJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        var (spec, prob) = o.ParseTarget();
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        var cls = ObjectiveLanguage.Parse(net, spec) as ClassObjective ?? throw new BadInputException($"--target '{BadInputException.Shown(spec)}' must be one class.");
        using var initial = o.From == "noise"
            ? rand(new long[] { 1, 3, net.Input.Height, net.Input.Width }, generator: new Generator((ulong)o.Seed))
            : ImageIO.Load(o.From);
        o.Prepare(net);
        var progress = c.Steps(0, o.Descent.Steps, s => $"step {s.Step}/{s.Steps}: p {s.Terms.GetValueOrDefault("p"):0.0000}");
        var (image, reached, taken) = await Task.Run(() => TargetDream.Run(net, cls.Index, prob, initial, o.Descent, progress, c.Cancel));
        bool interrupted = c.Cancel.IsCancellationRequested;
        c.Save(image, c.Output, new DreamTargetResults(net.Name, cls.Describe(), prob, reached, taken), taken, interrupted);
        string label = net.Labels?[cls.Index] ?? cls.Index.ToString(CultureInfo.InvariantCulture);
        return new JobResult([c.Output], $"{c.Output}: p({label}) = {reached:0.0000} after {taken} steps", interrupted);
    }
}
