using static TorchSharp.torch;

namespace Reverie.Objectives;

/// <summary>
/// A channel's strongest response anywhere in the image: the spatial maximum of its activations
/// (summed over a batch). Written <c>max(LAYER:C)</c>. Unlike the channel's mean, its gradient
/// reaches only the position that responds most, so it grows one instance of the feature rather
/// than a texture of them.
/// </summary>
internal sealed class ChannelMax : Objective
{
    readonly string _layer, _display;
    readonly int _channel;

    ChannelMax(string layer, int channel, string display) => (_layer, _channel, _display) = (layer, channel, display);

    /// <inheritdoc/>
    public override IReadOnlyCollection<string> Layers => [_layer];
    /// <inheritdoc/>
    public override bool Tileable => false;

    /// <inheritdoc/>
    public override Tensor Evaluate(Features features) => features[_layer].select(1, _channel).flatten(1).amax(1).sum();

    internal static Objective Parse(string? argument, ObjectiveLanguage.Context c)
    {
        string a = argument?.Trim() ?? "";
        int colon = a.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(a[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int ch))
            throw new BadInputException($"max(...) takes one channel: max(LAYER:C); got 'max({BadInputException.Shown(a)})'.");
        string layer = a[..colon], tensor = c.Layer(layer);
        c.CheckChannel(layer, tensor, ch);
        return new ChannelMax(tensor, ch, layer);
    }

    /// <inheritdoc/>
    public override string Describe() => $"max({_display}:{_channel})";
}
