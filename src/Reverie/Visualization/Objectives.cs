using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>The mean activation of one channel (Lucid's channel objective), for all images or one image of the batch.</summary>
public sealed class ChannelObjective(string layer, int channel, string display, int? batchIndex = null) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a)
    {
        var x = a[layer].select(1, channel);
        if (batchIndex is { } b) x = x.narrow(0, b, 1);
        return x.mean(Enumerable.Range(1, (int)x.dim() - 1).Select(d => (long)d).ToArray()).sum();
    }
    /// <inheritdoc/>
    public override string Describe() => $"{display}:{channel}" + (batchIndex is { } b ? $"[{b}]" : "");
}

/// <summary>One neuron: a channel at a position (the centre by default).</summary>
public sealed class NeuronObjective(string layer, int channel, int? x, int? y, string display) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a)
    {
        var t = a[layer];
        if (t.dim() < 4) return t.select(1, channel).sum();
        long h = t.shape[2], w = t.shape[3];
        long yy = Math.Clamp(y ?? h / 2, 0, h - 1), xx = Math.Clamp(x ?? w / 2, 0, w - 1);
        return t[.., channel, yy, xx].sum();
    }
    /// <inheritdoc/>
    public override string Describe() => $"{display}:{channel}@{x?.ToString() ?? "c"},{y?.ToString() ?? "c"}";
}

/// <summary>A class score: its logit, or its softmax probability.</summary>
public sealed class ClassObjective(string logitsLayer, int index, string name, bool probability) : Objective
{
    /// <summary>The class index.</summary>
    public int Index { get; } = index;
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [logitsLayer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a)
    {
        var logits = a[logitsLayer].flatten(1);
        return (probability ? logits.softmax(1) : logits).select(1, Index).sum();
    }
    /// <inheritdoc/>
    public override string Describe() => $"class:{name}" + (probability ? ":prob" : "");
}

/// <summary>The mean dot product of each position's activation vector with a direction over the channels.</summary>
public sealed class DirectionObjective(string layer, float[] direction, string display) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a)
    {
        var t = a[layer];
        if (t.shape[1] != direction.Length)
            throw new BadInputException($"The direction has {direction.Length} values but layer '{display}' has {t.shape[1]} channels.");
        var d = tensor(direction, device: t.device).to(t.dtype).reshape([1, -1, .. Enumerable.Repeat(1L, (int)t.dim() - 2)]);
        return (t * d).sum(1).mean();
    }
    /// <inheritdoc/>
    public override string Describe() => $"direction:{display}";
}

/// <summary>
/// Diversity across a batch (Lucid's): minus the mean cosine similarity between the images' Gram
/// matrices at a layer, so that maximizing it pushes the images of a batch apart.
/// </summary>
public sealed class DiversityObjective(string layer, string display) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(IReadOnlyDictionary<string, Tensor> a) => -Similarity(a[layer]);

    /// <summary>Mean pairwise cosine similarity of the Gram matrices of a batch of activations [N,C,...].</summary>
    public static Tensor Similarity(Tensor t)
    {
        long n = t.shape[0];
        var f = t.reshape(n, t.shape[1], -1);
        var grams = matmul(f, f.transpose(1, 2)).reshape(n, -1);
        grams = grams / (grams.norm(1, keepdim: true) + 1e-10);
        var sim = matmul(grams, grams.t());
        return (sim.sum() - sim.diagonal().sum()) / Math.Max(1, n * (n - 1));
    }

    /// <inheritdoc/>
    public override string Describe() => $"diversity:{display}";
}
