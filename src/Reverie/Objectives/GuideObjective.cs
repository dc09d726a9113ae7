using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// Guided dreaming (the DeepDream notebook's objective_guide): the guide image's features at a
/// layer are recorded first (<see cref="Capture"/>); then at each position the objective is the dot
/// product of the activation vector with the guide feature it matches best, so the gradient there
/// is that guide feature.
/// </summary>
internal sealed class GuideObjective : Objective
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

    /// <summary>Records a guide image's features at <paramref name="layer"/> (shrunk so its longer side is at most <paramref name="maxSide"/>) and returns the guided objective.</summary>
    public static GuideObjective Of(Models.INetwork network, string layer, Tensor guideImage, int maxSide = 224)
    {
        using var scope = NewDisposeScope();
        var acts = Capture.Features(network, Capture.Shrink(guideImage, maxSide), [layer]);
        var obj = new GuideObjective(layer, acts[layer]);
        obj._guide.MoveToOuterDisposeScope();
        return obj;
    }

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [Layer];

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features)
    {
        var x = features[Layer];
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
        return (flat * matched).sum() / S(flat.shape[2]);
    }

    /// <summary>The guide's features, [C, M].</summary>
    public Tensor GuideFeatures => _guide;

    /// <inheritdoc/>
    public override string Describe() => $"guide({Layer})";
}
