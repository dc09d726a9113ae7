using Reverie.Models;
using Reverie.Objectives;
using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>Gradient attacks bounded in L∞ (or, for <see cref="PgdL2"/>, in L2).</summary>
public enum AttackMethod
{
    /// <summary>Fast gradient sign method: one step of size eps.</summary>
    Fgsm,
    /// <summary>Basic iterative method: T signed steps, projected onto the eps-ball, from the image.</summary>
    Bim,
    /// <summary>Projected gradient descent: BIM from a random start in the eps-ball (unless disabled).</summary>
    Pgd,
    /// <summary>Momentum iterative FGSM: signed steps along an accumulated, L1-normalized gradient.</summary>
    MiFgsm,
    /// <summary>PGD in an L2 ball of radius eps: steps along the L2-normalized gradient, projected, from a random start.</summary>
    PgdL2,
    /// <summary>DeepFool (L2): steps onto the nearest linearized class boundary until the answer changes, then a small overshoot; eps above 0 caps the L2 norm.</summary>
    DeepFool,
    /// <summary>Carlini-Wagner L2: Adam in tanh space on distance plus c times the logit margin, a binary search over c; the smallest change found.</summary>
    CarliniWagner,
    /// <summary>Square Attack (L∞): a score-based black box, random square windows of ±eps kept when the margin falls; reads only the probabilities; steps are its query budget.</summary>
    Square,
    /// <summary>Auto-PGD with the cross-entropy (L∞): momentum, a step size that starts at 2·eps and halves when progress stalls; steps default to 100.</summary>
    ApgdCe,
    /// <summary>Auto-PGD with the Difference of Logits Ratio loss (L∞), which ignores the logits' scale; targeted with a target.</summary>
    ApgdDlr,
    /// <summary>DeepFool (L∞): as <see cref="DeepFool"/>, with the boundaries' L∞ distances (the gradient differences' L1 norms) and signed steps; eps above 0 caps the L∞ norm.</summary>
    DeepFoolLinf,
    /// <summary>HopSkipJump (L2): a decision-based black box that reads only the top label; the smallest change it finds within a query budget (steps); eps above 0 bounds the L2 norm.</summary>
    HopSkipJump,
}

/// <summary>
/// The methods: their names on the command line and in results (apgd-ce, deepfool-linf, …), a title
/// for menus, and the defaults that differ by method (the command line and the studio both take them
/// from here).
/// </summary>
internal static class AttackMethods
{
    /// <summary>One method. <paramref name="Steps"/>: its default iterations (or query budget);
    /// <paramref name="OptionalEps"/>: it looks for the smallest change, so eps only caps it and 0 (no cap) is its default.</summary>
    internal sealed record Entry(string Name, AttackMethod Method, string Title, int Steps, bool OptionalEps = false)
    {
        /// <summary>The default eps: 0 (no cap) where it is optional, an L2 radius of 1 for pgd-l2 (torchattacks' default for images in 0..1), else 0.01.</summary>
        public double Eps => OptionalEps ? 0 : Method == AttackMethod.PgdL2 ? 1 : 0.01;
    }

    static readonly Entry[] All =
    [
        new("fgsm", AttackMethod.Fgsm, "FGSM (one step, L∞)", 10),
        new("bim", AttackMethod.Bim, "BIM (iterative, L∞)", 10),
        new("pgd", AttackMethod.Pgd, "PGD (random start, L∞)", 10),
        new("mifgsm", AttackMethod.MiFgsm, "MI-FGSM (momentum, L∞)", 10),
        new("pgd-l2", AttackMethod.PgdL2, "PGD (L2 ball)", 10),
        new("deepfool", AttackMethod.DeepFool, "DeepFool (smallest L2 change)", 50, OptionalEps: true), // stops when the answer changes: the paper's 50 at most
        new("deepfool-linf", AttackMethod.DeepFoolLinf, "DeepFool (smallest L∞ change)", 50, OptionalEps: true),
        new("cw", AttackMethod.CarliniWagner, "Carlini-Wagner (smallest L2 change)", 100, OptionalEps: true),
        new("square", AttackMethod.Square, "Square Attack (black box: probabilities only, L∞)", 1000),
        new("apgd-ce", AttackMethod.ApgdCe, "Auto-PGD, cross-entropy (L∞)", 100),
        new("apgd-dlr", AttackMethod.ApgdDlr, "Auto-PGD, DLR loss (L∞; APGD-T with a target)", 100),
        new("hopskipjump", AttackMethod.HopSkipJump, "HopSkipJump (black box: top label only, smallest L2 change)", 1000, OptionalEps: true),
    ];

    /// <summary>Every method, in the order menus list them.</summary>
    public static IReadOnlyList<Entry> Entries => All;

    static Entry Of(AttackMethod m) => All.First(a => a.Method == m);

    /// <summary>The method's name.</summary>
    public static string Name(AttackMethod m) => Of(m).Name;

    /// <summary>The method's default iterations (square and hopskipjump: its query budget).</summary>
    public static int DefaultSteps(AttackMethod m) => Of(m).Steps;

    /// <summary>The method's default eps (see <see cref="Entry.Eps"/>).</summary>
    public static double DefaultEps(AttackMethod m) => Of(m).Eps;

    /// <summary>Whether eps only caps the method (0: no cap, its default); the others need a budget.</summary>
    public static bool OptionalEps(AttackMethod m) => Of(m).OptionalEps;

    /// <summary>The method of a name; one sentence listing the names otherwise.</summary>
    public static AttackMethod Parse(string name) => All.FirstOrDefault(a => a.Name == name) is { } hit ? hit.Method
        : throw new BadInputException($"--method must be {string.Join(", ", All[..^1].Select(a => a.Name))} or {All[^1].Name}; got '{BadInputException.Shown(name)}'.");

    /// <summary>Whether the method is a black box (it reads scores or labels only, and counts queries).</summary>
    public static bool BlackBox(AttackMethod m) => m is AttackMethod.Square or AttackMethod.HopSkipJump;
}

/// <summary>Options of a gradient attack; eps (the L∞ budget, or the L2 radius for <see cref="AttackMethod.PgdL2"/>) and step sizes are in the 0..1 image space, whatever the model's preprocessing.</summary>
public sealed record AttackOptions
{
    /// <summary>The method.</summary>
    public AttackMethod Method { get; init; } = AttackMethod.Fgsm;
    /// <summary>The L∞ budget.</summary>
    public double Eps { get; init; } = 0.03;
    /// <summary>Steps (FGSM always takes one); Square and HopSkipJump: the query budget per image.</summary>
    public int Steps { get; init; } = 10;
    /// <summary>Step size; null means eps / steps (2.5·eps / steps for <see cref="AttackMethod.PgdL2"/>, Madry et al.'s choice).</summary>
    public double? StepSize { get; init; }
    /// <summary>Target class for a targeted attack (its probability is raised); null is untargeted. A job's recipe holds it by name.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int? Target { get; init; }
    /// <summary>Start from a uniformly random point in the eps-ball (PGD's default).</summary>
    public bool? RandomStart { get; init; }
    /// <summary>MI-FGSM's momentum decay.</summary>
    public double Decay { get; init; } = 1.0;
    /// <summary>DeepFool's overshoot: the total step is stretched by 1 + overshoot to cross the boundary.</summary>
    public double Overshoot { get; init; } = 0.02;
    /// <summary>Carlini-Wagner: binary-search steps over c (each runs <see cref="Steps"/> Adam steps); 9, as in the paper's code.</summary>
    public int Searches { get; init; } = 9;
    /// <summary>Carlini-Wagner: Adam's learning rate in tanh space.</summary>
    public double CwLearningRate { get; init; } = 0.01;
    /// <summary>Carlini-Wagner: κ, how far past the boundary the logit margin must go.</summary>
    public double Confidence { get; init; }
    /// <summary>Seed of the random start (a job's recipe holds it once, as the job's seed).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Seed { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        if (Method == AttackMethod.CarliniWagner)
        {
            if (Searches is < 1 or > 30) throw new BadInputException($"--searches must be from 1 to 30; got {Searches}.");
            if (!(CwLearningRate > 0) || CwLearningRate > 10) throw new BadInputException($"--lr must be above 0 and at most 10; got {CwLearningRate}.");
            if (!(Confidence >= 0) || Confidence > 1000) throw new BadInputException($"--confidence must be from 0 to 1000; got {Confidence}.");
        }
        else if (Method == AttackMethod.DeepFoolLinf)
        {
            if (!(Eps >= 0) || Eps > 1) throw new BadInputException($"--eps caps deepfool-linf's L-infinity norm (0: no cap) and must be from 0 to 1; got {Eps}.");
            if (!(Overshoot >= 0) || Overshoot > 10) throw new BadInputException($"--overshoot must be from 0 to 10; got {Overshoot}.");
        }
        else if (Method == AttackMethod.HopSkipJump)
        {
            if (!(Eps >= 0) || Eps > 10_000) throw new BadInputException($"--eps bounds hopskipjump's L2 norm (0: no bound) and must be from 0 to 10000; got {Eps}.");
        }
        else if (Method == AttackMethod.DeepFool)
        {
            if (!(Eps >= 0) || Eps > 10_000) throw new BadInputException($"--eps caps deepfool's L2 norm (0: no cap) and must be from 0 to 10000; got {Eps}.");
            if (!(Overshoot >= 0) || Overshoot > 10) throw new BadInputException($"--overshoot must be from 0 to 10; got {Overshoot}.");
        }
        else if (L2)
        {
            if (!(Eps > 0) || Eps > 10_000) throw new BadInputException($"--eps is pgd-l2's L2 radius and must be above 0 (and at most 10000); got {Eps}.");
            if (StepSize is { } s2 && (!(s2 > 0) || s2 > 10_000)) throw new BadInputException($"--step-size must be above 0 and at most 10000; got {s2}.");
        }
        else
        {
            if (Apgd && StepSize is not null) throw new BadInputException("apgd chooses its own step size (2·eps, halved as it goes); drop --step-size.");
            if (!(Eps >= 0) || Eps > 1) throw new BadInputException($"--eps must be from 0 to 1; got {Eps}.");
            if (StepSize is { } s && (!(s > 0) || s > 1)) throw new BadInputException($"--step-size must be above 0 and at most 1; got {s}.");
        }
        int most = AttackMethods.BlackBox(Method) ? 100_000 : 10_000;
        if (Steps < 1 || Steps > most) throw new BadInputException($"--steps must be from 1 to {most}; got {Steps}.");
    }

    /// <summary>The number of steps actually taken.</summary>
    public int EffectiveSteps => Method switch { AttackMethod.Fgsm => 1, AttackMethod.CarliniWagner => Steps * Searches, _ => Steps };
    /// <summary>The step size actually used.</summary>
    public double EffectiveStepSize => Method == AttackMethod.Fgsm ? Eps : Apgd ? 2 * Eps : StepSize ?? (L2 ? 2.5 : 1) * Eps / Steps;
    /// <summary>Whether the method is Auto-PGD (its step size is its own: 2·eps to start).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Apgd => Method is AttackMethod.ApgdCe or AttackMethod.ApgdDlr;
    /// <summary>Whether the budget is an L2 radius.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool L2 => Method is AttackMethod.PgdL2 or AttackMethod.DeepFool or AttackMethod.CarliniWagner or AttackMethod.HopSkipJump;
    /// <summary>Whether the attack starts from a random point of the ball.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool EffectiveRandomStart => RandomStart ?? Method is AttackMethod.Pgd or AttackMethod.PgdL2 or AttackMethod.ApgdCe or AttackMethod.ApgdDlr;
}

/// <summary>
/// L∞ attacks as a configuration of the engine: the pixels, confined to the eps-ball around the
/// original and to 0..1 (<see cref="BallParameterization"/>, with PGD's random start), the
/// cross-entropy of the model's prediction as the objective (raised for an untargeted attack,
/// lowered toward the target for a targeted one), the sign step (with momentum for MI-FGSM),
/// T steps.
/// </summary>
public static class Attack
{
    /// <summary>Log-probabilities of the classes for images [N,3,H,W] in 0..1 at the network's input size.</summary>
    public static Tensor LogProbabilities(INetwork net, Tensor images)
    {
        var ce = new CrossEntropy(net, zeros(images.shape[0], ScalarType.Int64));
        return ce.LogProbabilities(new Features(ImageOptimizer.ForwardAtInputSize(net, images, ce.InputSizeLayers)));
    }

    /// <summary>The objective an attack maximizes: the cross-entropy of the true labels, or minus that of the target.</summary>
    public static Objective Objective(INetwork net, Tensor labels, int? target) => target is { } t
        ? -1.0 * new CrossEntropy(net, full(labels.shape, S(t), ScalarType.Int64))
        : new CrossEntropy(net, labels);

    /// <summary>
    /// Attacks images [N,3,H,W] (in 0..1, at the network's input size) whose true labels are
    /// <paramref name="labels"/> [N]; returns adversarial images with |x* − x|∞ ≤ eps, in 0..1.
    /// </summary>
    public static Tensor Run(INetwork net, Tensor images, Tensor labels, AttackOptions o) => Run(net, images, labels, o, null, default).Image;

    /// <summary>
    /// The attack with progress and cancellation: stopped early, the image holds the steps done (still
    /// within eps). <paramref name="eightBit"/>: the result will be saved at 8 bits a channel (DeepFool
    /// then goes on until the rounded image crosses).
    /// </summary>
    internal static OptimizationResult Run(INetwork net, Tensor images, Tensor labels, AttackOptions o, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false)
    {
        o.Validate();
        if (o.Method == AttackMethod.CarliniWagner) return CarliniWagner.Run(net, images.to(net.Device), labels, o, progress, cancel, eightBit);
        if (o.Method is AttackMethod.DeepFool or AttackMethod.DeepFoolLinf)
        {
            if (o.Target is not null) throw new BadInputException("deepfool is untargeted; drop --target or choose another method.");
            return DeepFool.Run(net, images.to(net.Device), labels, o, progress, cancel, eightBit);
        }
        if (o.Method == AttackMethod.HopSkipJump)
            return HopSkipJump.Run(x => LogProbabilities(net, x).argmax(1), images.to(net.Device), labels, o, progress, cancel, eightBit);
        if (o.Method == AttackMethod.Square)
            return SquareAttack.Run(x => LogProbabilities(net, x), images.to(net.Device), labels, o, progress, cancel, eightBit);
        if (o.Apgd)
            return Adversarial.Apgd.Run(x => LogProbabilities(net, x), images.to(net.Device), labels, o.Target is { } t ? full(labels.shape, S(t), ScalarType.Int64) : null,
                o.Method == AttackMethod.ApgdDlr, o.Eps, o.Steps, o.Seed, o.EffectiveRandomStart, progress, cancel, eightBit);
        var x0 = images.detach().to(ScalarType.Float32).to(net.Device);
        bool randomStart = o.EffectiveRandomStart;
        var result = new ImageOptimizer
        {
            Network = net,
            Objective = Objective(net, labels, o.Target),
            Parameterization = new BallParameterization(x0, o.Eps, o.L2, randomStart: randomStart ? new Generator((ulong)o.Seed) : null),
            StepRule = o.L2 ? new L2Step(o.EffectiveStepSize) : new SignStep(o.EffectiveStepSize, o.Method == AttackMethod.MiFgsm ? o.Decay : null),
            Schedule = new FixedSteps(o.EffectiveSteps),
        }.Run(progress, cancel);
        return result;
    }

    /// <summary>
    /// Whether images [N,C,H,W] are gray given as equal channels (as data sets give them to colour networks): a change
    /// must then be the same in every channel, or a network that averages them sees a third of it.
    /// </summary>
    internal static bool IsGray(Tensor x)
    {
        using var noGrad = no_grad();
        return x.shape[1] > 1 && x.narrow(1, 1, x.shape[1] - 1).sub(x.narrow(1, 0, 1)).abs().max().item<float>() == 0;
    }

    /// <summary>Projects onto {|x − x0|∞ ≤ eps} ∩ [0,1].</summary>
    public static Tensor Project(Tensor x, Tensor x0, double eps) => BallParameterization.Project(x, x0, eps);

    /// <summary>Random sign noise of the same budget: x + eps·sign(u), u uniform, clipped to 0..1 (the brief's baseline).</summary>
    public static Tensor SignNoise(Tensor images, double eps, int seed)
    {
        using var noGrad = no_grad();
        var g = new Generator((ulong)seed);
        var s = (rand(images.shape, generator: g) * S(2) - S(1)).sign().to(images.device);
        return (images + S(eps) * s).clamp(S(0), S(1));
    }

    /// <summary>
    /// The smallest eps on a grid (0.001 steps up to <paramref name="max"/>) at which single-step
    /// FGSM changes the top-1 label of one image [1,3,H,W]; null when none does.
    /// </summary>
    public static double? SmallestFgsmEps(INetwork net, Tensor image, int label, double max = 0.05, double step = 0.001)
    {
        using var scope = NewDisposeScope();
        // FGSM's direction does not depend on eps: compute the sign once.
        var x0 = image.detach().to(ScalarType.Float32);
        var xi = x0.clone().requires_grad_(true);
        var loss = -LogProbabilities(net, xi).select(1, label).sum();
        var sign = autograd.grad([loss], [xi])[0].sign();
        using var noGrad = no_grad();
        for (int k = 1; k * step <= max + 1e-12; k++)
        {
            using var inner = NewDisposeScope();
            double eps = k * step;
            var adv = Project(x0 + S(eps) * sign, x0, eps);
            if (LogProbabilities(net, adv).argmax(1).item<long>() != label) return eps;
        }
        return null;
    }
}
