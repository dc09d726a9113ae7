using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// DeepDream's objective: half the mean square of a layer's activations (optionally of some
/// channels), so that the gradient with respect to the activations is the activations
/// themselves, scaled. The mean (rather than the sum) keeps several layers of different
/// sizes comparable when they are combined; with one layer the normalized step is the same.
/// Written <c>LAYER</c> or <c>l2(LAYER:CHANNELS)</c> in the objective language.
/// </summary>
internal sealed class LayerL2(string layer, IReadOnlyList<int>? channels = null, string? displayName = null) : Objective
{
    /// <summary>The layer.</summary>
    public string Layer { get; } = layer;
    /// <summary>The channels, or null for all.</summary>
    public IReadOnlyList<int>? Channels { get; } = channels;

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [Layer];

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features)
    {
        var a = features[Layer];
        if (Channels is { Count: > 0 })
        {
            using var idx = tensor(Channels.Select(c => (long)c).ToArray(), device: a.device);
            a = a.index_select(1, idx);
        }
        return a.pow(S(2)).mean() * S(0.5);
    }

    /// <inheritdoc/>
    public override string Describe()
    {
        string name = displayName ?? Layer;
        return Channels is { Count: > 0 } ? $"l2({name}:{ObjectiveLanguage.FormatChannels(Channels)})" : name;
    }
}

/// <summary>The mean activation of one channel (Lucid's channel objective), for all images or one image of the batch.</summary>
internal sealed class ChannelObjective(string layer, int channel, string display, int? batchIndex = null) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a)
    {
        var x = a[layer].select(1, channel);
        if (batchIndex is { } b) x = x.narrow(0, b, 1);
        return x.mean(Enumerable.Range(1, (int)x.dim() - 1).Select(d => (long)d).ToArray()).sum();
    }
    /// <inheritdoc/>
    public override string Describe() => $"{display}:{channel}" + (batchIndex is { } b ? $"[{b}]" : "");
}

/// <summary>One neuron: a channel at a position (the centre by default).</summary>
internal sealed class NeuronObjective(string layer, int channel, int? x, int? y, string display) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a)
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

/// <summary>The mean dot product of each position's activation vector with a direction over the channels.</summary>
internal sealed class DirectionObjective(string layer, float[] direction, string display) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a)
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
internal sealed class DiversityObjective(string layer, string display) : Objective
{
    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [layer];
    /// <inheritdoc/>
    public override bool Tileable => false;
    /// <inheritdoc/>
    public override Tensor Evaluate(Features a) => -Similarity(a[layer]);

    /// <summary>Mean pairwise cosine similarity of the Gram matrices of a batch of activations [N,C,...].</summary>
    public static Tensor Similarity(Tensor t)
    {
        long n = t.shape[0];
        var f = t.reshape(n, t.shape[1], -1);
        var grams = matmul(f, f.transpose(1, 2)).reshape(n, -1);
        grams = grams / (grams.norm(1, keepdim: true) + S(1e-10));
        var sim = matmul(grams, grams.t());
        return (sim.sum() - sim.diagonal().sum()) / S(Math.Max(1, n * (n - 1)));
    }

    /// <inheritdoc/>
    public override string Describe() => $"diversity:{display}";
}
