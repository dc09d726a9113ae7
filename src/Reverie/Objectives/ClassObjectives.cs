using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>A class score: its logit, or its softmax probability.</summary>
internal sealed class ClassObjective(string logitsLayer, int index, string name, bool probability) : Objective
{
    /// <summary>The class index.</summary>
    public int Index { get; } = index;
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [];
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> InputSizeLayers => [logitsLayer];
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a)
    {
        var logits = a.AtInputSize(logitsLayer).flatten(1);
        return (probability ? logits.softmax(1) : logits).select(1, Index).sum();
    }
    /// <inheritdoc/>
    public override string Describe() => $"class:{name}" + (probability ? ":prob" : "");
}


/// <summary>
/// The cross-entropy of the network's prediction against given labels [N] (one per image), from
/// the logits when the network has them, else from its probabilities. Maximizing it is an
/// untargeted attack; maximizing its negative (toward target labels) a targeted one.
/// </summary>
internal sealed class CrossEntropy : Objective
{
    readonly string _layer;
    readonly bool _fromProbabilities;
    readonly Tensor _labels;

    /// <summary>The cross-entropy for <paramref name="network"/>'s output against <paramref name="labels"/> [N].</summary>
    public CrossEntropy(INetwork network, Tensor labels)
    {
        string output = network.ResolveLayer(network.OutputLayer);
        if (network.LogitsLayer is { } logits && logits != output) (_layer, _fromProbabilities) = (logits, false);
        else (_layer, _fromProbabilities) = (output, network.OutputIsProbability);
        _labels = labels.to(ScalarType.Int64).to(network.Device).reshape(-1, 1);
    }

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [];
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> InputSizeLayers => [_layer];

    /// <summary>Log-probabilities [N,K] from the activations.</summary>
    public Tensor LogProbabilities(Features features)
    {
        var y = features.AtInputSize(_layer).flatten(1);
        return _fromProbabilities ? y.clamp_min(S(1e-30)).log() : y.log_softmax(1);
    }

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features) => -LogProbabilities(features).gather(1, _labels).sum();

    /// <inheritdoc/>
    public override string Describe() => "cross-entropy";
}

/// <summary>
/// Minus the squared distance of the network's class probabilities to a target distribution
/// (the brief's "dreaming toward a target output"): the target gives class <c>k</c> probability
/// <c>p</c> and spreads the rest evenly.
/// </summary>
internal sealed class TargetDistance : Objective
{
    readonly string _output;
    readonly bool _isProbability;
    readonly int _class;
    readonly double _p;

    /// <summary>The distance to "class <paramref name="classIndex"/> with probability <paramref name="p"/>".</summary>
    public TargetDistance(INetwork network, int classIndex, double p)
    {
        if (!(p > 0) || p > 1) throw new BadInputException($"The target probability must be above 0 and at most 1; got {p}.");
        _output = network.ResolveLayer(network.OutputLayer);
        _isProbability = network.OutputIsProbability;
        _class = classIndex;
        _p = p;
    }

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [];
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> InputSizeLayers => [_output];

    /// <summary>The class probabilities [N,K].</summary>
    public Tensor Probabilities(Features features)
    {
        var y = features.AtInputSize(_output).flatten(1);
        return _isProbability ? y : y.softmax(1);
    }

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features)
    {
        var probs = Probabilities(features);
        long k = probs.shape[1];
        var target = full(new long[] { 1, k }, S((1 - _p) / Math.Max(1, k - 1)), device: probs.device, dtype: probs.dtype);
        target[0, _class] = tensor(_p);
        return -(probs - target).pow(S(2)).sum();
    }

    /// <summary>The target class's probability, as an objective (for reporting).</summary>
    public Objective ClassProbability => new ProbabilityOf(this);

    sealed class ProbabilityOf(TargetDistance d) : Objective
    {
        public override IReadOnlyCollection<string> Layers => [];
        public override IReadOnlyCollection<string> InputSizeLayers => d.InputSizeLayers;
        public override Tensor Evaluate(Features features) => d.Probabilities(features).select(1, d._class).sum();
        public override string Describe() => $"p({d._class})";
    }

    /// <inheritdoc/>
    public override string Describe() => $"target(class {_class} = {_p:G4})";
}
