using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models;
using Reverie.Objectives;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>The options of <c>reverie attack IMAGE</c>: the photo, the attack, and optionally a surrogate to craft on.</summary>
public sealed record AttackJobOptions : JobOptions
{
    /// <summary>The photo (an absolute path in recipes).</summary>
    public required string Input { get; init; }
    /// <summary>The attack (its seed is the job's; its target is <see cref="TargetClass"/>).</summary>
    public AttackOptions Attack { get; init; } = new();
    /// <summary>The target class (name or index) of a targeted attack, or null.</summary>
    public string? TargetClass { get; init; }
    /// <summary>Craft on this model instead (black-box transfer) and report the attacked model's answer.</summary>
    public string? Surrogate { get; init; }
    /// <summary>Also find the smallest eps (0.001 steps up to 0.05) at which one-step FGSM changes the top label.</summary>
    public bool MinEps { get; init; }
    /// <summary>
    /// Attack the photo shrunk to the network's input size (and save that), as Reverie did before
    /// 0.3; by default the perturbation lives on the photo at its own size and the resize to the
    /// network's input is part of the differentiable path.
    /// </summary>
    public bool AtInputSize { get; init; }

    /// <inheritdoc/>
    public override IEnumerable<string> InputFiles() =>
        [.. base.InputFiles(), Input, .. Surrogate is { } s && File.Exists(s) ? [s] : Array.Empty<string>()];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Attack.Validate();
    }
}

/// <summary>A class and its probability.</summary>
internal sealed record TopClass(string Label, int Index, double P);

/// <summary>
/// What an attack did. <c>After</c> is the answer on the image as saved (8 bits a channel, at the
/// photo's <c>Width</c> x <c>Height</c>); <c>Levels</c> is the largest change of any channel of any
/// pixel in 8-bit levels (at most ⌈eps·255⌉); <c>Queries</c> is how many times a black-box attack asked the model.
/// </summary>
internal sealed record AttackResults(string Model, string? Surrogate, string Method, double Eps, int Steps, double StepSize, int? Target, bool RandomStart,
    TopClass Before, TopClass After, double Linf, double Psnr, double? SmallestFgsmEps, string Perturbation, int Width = 0, int Height = 0, int Levels = 0, double L2 = 0, double? Queries = null);

/// <summary><c>reverie attack IMAGE</c> as a job: an adversarial example and its amplified perturbation (OUT-perturbation.png).</summary>
internal sealed class AttackJob : Job<AttackJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "attack";

    /// <summary>The longest side a photo is attacked at.</summary>
    const int MaxSide = 4096;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(AttackJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        using var craft = o.Surrogate is { } s ? await c.OpenModelAsync(s) : null;
        var crafter = craft ?? (INetwork)net;
        int? target = o.TargetClass is { } t
            ? (ObjectiveLanguage.Parse(crafter, "class:" + t) as ClassObjective ?? throw new BadInputException($"--target '{BadInputException.Shown(t)}' must be one class.")).Index
            : null;
        var options = o.Attack with { Target = target, Seed = o.Seed };
        // A photo is attacked at its own size up to 4096 pixels a side (larger ones are shrunk first,
        // to 8-bit levels again, so that the bound in levels holds against what is attacked).
        using var photo = ImageIO.Load(o.Input, MaxSide);
        if (ImageIO.FormatFor(c.Output) != SkiaSharp.SKEncodedImageFormat.Png)
            c.Note("JPEG changes the pixels as it compresses: the adversarial image keeps its eps bound, and its effect, only as PNG.");
        using var scope = NewDisposeScope();
        photo.mul_(S(255)).round_().div_(S(255));
        // The photo at its own size (8-bit levels, as read), or shrunk to the input size; the optimizer
        // resizes to the network's input inside the differentiable path, as classify resizes.
        var x0 = (o.AtInputSize ? ImageIO.Resize(photo, crafter.Input.Height, crafter.Input.Width) : photo).to(crafter.Device);
        static Prediction Top(INetwork n, Tensor x) => Classifier.Classify(n, x, 1)[0];
        var before = Top(net, x0);
        var crafterLabel = craft is null ? before.Index : Top(craft, x0).Index;
        // A method that looks for the smallest change takes eps as a cap, and 0 as none: "eps 0" would say the opposite.
        string stage = options.Eps == 0 && AttackMethods.OptionalEps(options.Method) ? $"{AttackMethods.Name(options.Method)}, no cap on the change" : $"{AttackMethods.Name(options.Method)} eps {options.Eps}";
        c.Report(new JobEvent { Stage = stage, Step = 0, Total = options.EffectiveSteps });
        var run = await Task.Run(() => Attack.Run(crafter, x0, tensor(new long[] { crafterLabel }), options, c.Steps(0, options.EffectiveSteps, s => $"{stage}: step {s.Step}/{s.Steps}"), c.Cancel, eightBit: true));
        // What is saved: 8 bits a channel. L∞: rounded to the nearest level, which keeps every pixel within
        // ⌈eps·255⌉ levels of the photo. L2: each change cut toward the photo to a whole level, so that
        // rounding cannot carry the image out of the ball (it can only shrink the change). C&W has no ball;
        // HopSkipJump rounds its result itself, still wrong and within eps, as it sits on the boundary.
        var adv = options.L2 && options.Eps > 0 && options.Method is not (AttackMethod.CarliniWagner or AttackMethod.HopSkipJump)
            ? (x0 * S(255) + (run.Image - x0).mul(S(255)).trunc_()).round_().div_(S(255))
            : run.Image.mul(S(255)).round_().div_(S(255));
        double linf, psnr, l2;
        using (no_grad()) { linf = (adv - x0).abs().max().item<float>(); psnr = Filters.Psnr(adv, x0); l2 = (adv - x0).norm().item<float>(); }
        var after = Top(net, adv);
        double? smallest = o.MinEps && !run.Cancelled ? Attack.SmallestFgsmEps(crafter, ImageIO.Resize(x0, crafter.Input.Height, crafter.Input.Width), crafterLabel) : null;
        // Amplified to fill 0..1: by the L∞ budget, or for an L2 attack (and DeepFool) by the largest change made.
        double span = options.L2 || options.Method == AttackMethod.DeepFoolLinf ? Math.Max(linf, 1e-6) : options.Eps;
        var perturbation = span > 0 ? ((adv - x0) * S(0.5 / span) + S(0.5)).clamp(S(0), S(1)) : full_like(x0, S(0.5));
        string pertPath = c.Beside("-perturbation", ".png");
        var results = new AttackResults(net.Name, craft?.Name, AttackMethods.Name(options.Method), options.Eps, options.EffectiveSteps, options.EffectiveStepSize,
            target, options.EffectiveRandomStart,
            new TopClass(before.Label, before.Index, before.Probability), new TopClass(after.Label, after.Index, after.Probability), linf, psnr, smallest, pertPath,
            (int)x0.shape[3], (int)x0.shape[2], (int)Math.Round(linf * 255), l2, run.Terms.TryGetValue("queries", out var q) ? q : null);
        c.Save(adv, c.Output, results, run.Steps, run.Cancelled);
        if (c.NothingSaved) return new JobResult([], "interrupted before the first step: nothing saved", true, results);
        c.SaveExtra(perturbation, pertPath);
        // The file as saved, read back and resized as classify does: what someone who is sent the picture gets.
        string check;
        using (var saved = ImageIO.Load(c.Output))
        {
            var fromFile = Top(net, saved.to(net.Device));
            check = fromFile.Index == after.Index
                ? $"read back from {Path.GetFileName(c.Output)}, {net.Name} says {fromFile.Label} ({fromFile.Probability:0.000})"
                : $"but read back from {Path.GetFileName(c.Output)}, {net.Name} says {fromFile.Label}, not {after.Label}";
        }
        string files = $"{c.Output} ({x0.shape[3]}x{x0.shape[2]}), {pertPath}; {check}";
        return new JobResult([c.Output, pertPath], run.Cancelled ? $"interrupted after {run.Steps} steps: saved {files}" : files, run.Cancelled, results);
    }
}
