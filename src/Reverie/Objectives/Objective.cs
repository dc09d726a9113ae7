using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// What an objective sees at one evaluation: the activations the network produced for the image
/// (at the image's own size), the activations at the network's native input size (for class
/// scores, when an objective asks for them), and the image the network saw (RGB [N,3,H,W] in
/// 0..1, after transforms; one tile of it when the engine works tile by tile), so that
/// regularizers and distances are objectives like any other.
/// </summary>
public sealed class Features
{
    readonly IReadOnlyDictionary<string, Tensor> _activations;
    readonly IReadOnlyDictionary<string, Tensor> _atInputSize;
    readonly Dictionary<string, double>? _terms;
    readonly Tensor? _image;

    /// <summary>Wraps activations and the image; <paramref name="atInputSize"/> defaults to <paramref name="activations"/>.</summary>
    public Features(IReadOnlyDictionary<string, Tensor> activations, Tensor? image = null,
        IReadOnlyDictionary<string, Tensor>? atInputSize = null, Dictionary<string, double>? terms = null)
    {
        _activations = activations;
        _atInputSize = atInputSize ?? activations;
        _image = image;
        _terms = terms;
    }

    /// <summary>A layer's activations at the image's size.</summary>
    public Tensor this[string layer] => _activations.TryGetValue(layer, out var t) ? t
        : throw new InvalidOperationException($"Layer '{layer}' was not computed for this objective.");

    /// <summary>A layer's activations for the image resized to the network's input size.</summary>
    public Tensor AtInputSize(string layer) => _atInputSize.TryGetValue(layer, out var t) ? t
        : throw new InvalidOperationException($"Layer '{layer}' was not computed at the input size for this objective.");

    /// <summary>The image the network saw; objectives on the image fail clearly without one.</summary>
    public Tensor Image => _image ?? throw new InvalidOperationException("This objective reads the image, and none was given.");

    /// <summary>Records a named term's value (the engine reports them with each step; tiles add up).</summary>
    public void Record(string name, double value)
    {
        if (_terms is null) return;
        _terms[name] = _terms.TryGetValue(name, out var v) ? v + value : value;
    }

    /// <summary>Whether named terms are being recorded.</summary>
    public bool Recording => _terms is not null;
}

/// <summary>
/// What the optimization maximizes: a scalar computed from a network's activations and the image.
/// Objectives compose with <c>+</c>, <c>-</c> and scalar <c>*</c>, so <c>0.5 * a - b</c> is itself
/// an objective; losses (distances, regularizers) enter with a negative weight. A term made with
/// <see cref="As"/> reports its value under a name with every step.
/// </summary>
public abstract class Objective
{
    /// <summary>The layers (canonical names) this objective reads at the image's size.</summary>
    public abstract IReadOnlyCollection<string> Layers { get; }

    /// <summary>The layers it reads with the image resized to the network's input size (class scores); none by default.</summary>
    public virtual IReadOnlyCollection<string> InputSizeLayers => [];

    /// <summary>Whether it depends only on pixels in a neighbourhood, so that the engine may split the image into tiles and add up the tiles' values.</summary>
    public virtual bool Tileable => InputSizeLayers.Count == 0;

    /// <summary>The value to maximize, a scalar tensor with autograd.</summary>
    public abstract Tensor Evaluate(Features features);

    /// <summary>Evaluates on activations alone (objectives that read no image).</summary>
    public Tensor Evaluate(IReadOnlyDictionary<string, Tensor> activations) => Evaluate(new Features(activations));

    /// <summary>A short human-readable description, used in recipes and progress.</summary>
    public abstract string Describe();

    /// <summary>This objective, reporting its (unweighted) value as <paramref name="name"/> at every step.</summary>
    public Objective As(string name) => new Labeled(this, name);

    /// <summary>Sum of two objectives.</summary>
    public static Objective operator +(Objective a, Objective b) => new Sum([(1.0, a), (1.0, b)]);
    /// <summary>Difference of two objectives.</summary>
    public static Objective operator -(Objective a, Objective b) => new Sum([(1.0, a), (-1.0, b)]);
    /// <summary>An objective scaled by a constant.</summary>
    public static Objective operator *(double w, Objective a) => new Sum([(w, a)]);
    /// <summary>An objective scaled by a constant.</summary>
    public static Objective operator *(Objective a, double w) => new Sum([(w, a)]);

    /// <summary>The terms of a sum with their weights (one term of weight 1 for anything else).</summary>
    public IReadOnlyList<(double Weight, Objective Term)> WeightedTerms => this is Sum s ? s.Terms : [(1.0, this)];


    /// <summary>A weighted sum of objectives.</summary>
    internal sealed class Sum(IReadOnlyList<(double Weight, Objective Term)> terms) : Objective
    {
        /// <summary>The weighted terms.</summary>
        public IReadOnlyList<(double Weight, Objective Term)> Terms { get; } =
            terms.SelectMany(t => t.Term is Sum s ? s.Terms.Select(u => (t.Weight * u.Weight, u.Term)) : [t]).ToList();

        /// <inheritdoc/>
        public override IReadOnlyCollection<string> Layers => Terms.SelectMany(t => t.Term.Layers).Distinct().ToList();
        /// <inheritdoc/>
        public override IReadOnlyCollection<string> InputSizeLayers => Terms.SelectMany(t => t.Term.InputSizeLayers).Distinct().ToList();
        /// <inheritdoc/>
        public override bool Tileable => Terms.All(t => t.Term.Tileable);

        /// <inheritdoc/>
        public override Tensor Evaluate(Features features)
        {
            Tensor? total = null;
            foreach (var (w, term) in Terms)
            {
                var v = term.Evaluate(features);
                if (w != 1) v = v * S(w);
                total = total is null ? v : total + v;
            }
            return total ?? throw new InvalidOperationException("An empty objective.");
        }

        /// <inheritdoc/>
        public override string Describe() => string.Join(" + ", Terms.Select(t => t.Weight == 1 ? t.Term.Describe() : $"{t.Weight:G4}*{t.Term.Describe()}"));
    }

    /// <summary>An objective that records its value under a name.</summary>
    internal sealed class Labeled(Objective inner, string name) : Objective
    {
        /// <summary>The objective.</summary>
        public Objective Inner { get; } = inner;
        /// <summary>The name its value is reported under.</summary>
        public string Name { get; } = name;
        /// <inheritdoc/>
        public override IReadOnlyCollection<string> Layers => Inner.Layers;
        /// <inheritdoc/>
        public override IReadOnlyCollection<string> InputSizeLayers => Inner.InputSizeLayers;
        /// <inheritdoc/>
        public override bool Tileable => Inner.Tileable;
        /// <inheritdoc/>
        public override Tensor Evaluate(Features features)
        {
            var v = Inner.Evaluate(features);
            if (features.Recording) features.Record(Name, v.detach().to(ScalarType.Float64).item<double>());
            return v;
        }
        /// <inheritdoc/>
        public override string Describe() => Inner.Describe();
    }
}
