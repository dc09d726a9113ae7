using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>
/// What the optimization maximizes: a scalar computed from a network's activations.
/// Objectives compose with <c>+</c>, <c>-</c> and scalar <c>*</c>, so
/// <c>0.5 * a - b</c> is itself an objective.
/// </summary>
public abstract class Objective
{
    /// <summary>The layers (canonical names) this objective reads.</summary>
    public abstract IReadOnlyCollection<string> Layers { get; }

    /// <summary>The value to maximize, a scalar tensor with autograd.</summary>
    public abstract Tensor Evaluate(IReadOnlyDictionary<string, Tensor> activations);

    /// <summary>A short human-readable description, used in recipes and progress.</summary>
    public abstract string Describe();

    /// <summary>Sum of two objectives.</summary>
    public static Objective operator +(Objective a, Objective b) => new Sum([(1.0, a), (1.0, b)]);
    /// <summary>Difference of two objectives.</summary>
    public static Objective operator -(Objective a, Objective b) => new Sum([(1.0, a), (-1.0, b)]);
    /// <summary>An objective scaled by a constant.</summary>
    public static Objective operator *(double w, Objective a) => new Sum([(w, a)]);
    /// <summary>An objective scaled by a constant.</summary>
    public static Objective operator *(Objective a, double w) => new Sum([(w, a)]);

    /// <summary>A weighted sum of objectives.</summary>
    public sealed class Sum(IReadOnlyList<(double Weight, Objective Term)> terms) : Objective
    {
        /// <summary>The weighted terms.</summary>
        public IReadOnlyList<(double Weight, Objective Term)> Terms { get; } =
            terms.SelectMany(t => t.Term is Sum s ? s.Terms.Select(u => (t.Weight * u.Weight, u.Term)) : [t]).ToList();

        /// <inheritdoc/>
        public override IReadOnlyCollection<string> Layers => Terms.SelectMany(t => t.Term.Layers).Distinct().ToList();

        /// <inheritdoc/>
        public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> activations)
        {
            Tensor? total = null;
            foreach (var (w, term) in Terms)
            {
                var v = term.Evaluate(activations);
                if (w != 1) v = v * w;
                total = total is null ? v : total + v;
            }
            return total ?? throw new InvalidOperationException("An empty objective.");
        }

        /// <inheritdoc/>
        public override string Describe() => string.Join(" + ", Terms.Select(t => t.Weight == 1 ? t.Term.Describe() : $"{t.Weight:G4}*{t.Term.Describe()}"));
    }
}

/// <summary>
/// DeepDream's objective: half the mean square of a layer's activations (optionally of some
/// channels), so that the gradient with respect to the activations is the activations
/// themselves, scaled. The mean (rather than the sum) keeps several layers of different
/// sizes comparable when they are combined; with one layer the normalized step is the same.
/// </summary>
public sealed class LayerL2(string layer, IReadOnlyList<int>? channels = null, string? displayName = null) : Objective
{
    /// <summary>The layer.</summary>
    public string Layer { get; } = layer;
    /// <summary>The channels, or null for all.</summary>
    public IReadOnlyList<int>? Channels { get; } = channels;

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [Layer];

    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> activations)
    {
        var a = activations[Layer];
        if (Channels is { Count: > 0 })
        {
            using var idx = tensor(Channels.Select(c => (long)c).ToArray(), device: a.device);
            a = a.index_select(1, idx);
        }
        return a.pow(2).mean() * 0.5;
    }

    /// <inheritdoc/>
    public override string Describe() => (displayName ?? Layer) + (Channels is { Count: > 0 } ? ":" + string.Join(",", Channels) : "");
}

/// <summary>
/// Guided dreaming (the DeepDream notebook's objective_guide): the guide image's features at a
/// layer are recorded first; then at each position the objective is the dot product of the
/// activation vector with the guide feature it matches best, so the gradient there is that guide
/// feature.
/// </summary>
public sealed class GuideObjective : Objective
{
    readonly Tensor _guide; // [C, M]
    /// <summary>The layer.</summary>
    public string Layer { get; }

    /// <summary>Creates the objective from the guide's activations [1,C,h,w] at <paramref name="layer"/>.</summary>
    public GuideObjective(string layer, Tensor guideActivations)
    {
        Layer = layer;
        _guide = guideActivations.detach()[0].flatten(1).clone();
        if (_guide.dtype is ScalarType.BFloat16 or ScalarType.Float16) _guide = _guide.to(ScalarType.Float32);
    }

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [Layer];

    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> activations)
    {
        var x = activations[Layer];
        long n = x.shape[0], c = x.shape[1];
        var flat = x.reshape(n, c, -1);                       // [N,C,P]
        var guide = _guide.to(x.device);
        Tensor best;
        using (no_grad())
        {
            var scores = matmul(flat.transpose(1, 2), guide);  // [N,P,M]
            best = scores.argmax(2);                          // [N,P]
        }
        var matched = guide.index_select(1, best.flatten()).reshape(c, n, -1).transpose(0, 1); // [N,C,P]
        return (flat * matched).sum() / flat.shape[2];
    }

    /// <summary>The guide's features, [C, M].</summary>
    public Tensor GuideFeatures => _guide;

    /// <inheritdoc/>
    public override string Describe() => $"guide({Layer})";
}
