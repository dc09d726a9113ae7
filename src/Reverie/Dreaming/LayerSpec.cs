using System.Globalization;
using Reverie.Models;
using Reverie.Optimization;

namespace Reverie.Dreaming;

/// <summary>A dream target <c>NAME[:CHANNELS][*WEIGHT]</c>: a layer, optional channels (<c>12</c>, <c>0-15</c>, <c>3,7,9</c>) and a weight.</summary>
public sealed record LayerSpec(string Layer, IReadOnlyList<int>? Channels, double Weight)
{
    /// <summary>Parses the text form; malformed text raises <see cref="BadInputException"/>.</summary>
    public static LayerSpec Parse(string text)
    {
        string s = text.Trim();
        double weight = 1;
        int star = s.LastIndexOf('*');
        if (star >= 0)
        {
            if (!double.TryParse(s[(star + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out weight))
                throw new BadInputException($"--layer '{text}': the weight after '*' is not a number.");
            s = s[..star];
        }
        List<int>? channels = null;
        int colon = s.LastIndexOf(':');
        if (colon >= 0)
        {
            channels = new List<int>();
            foreach (var part in s[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var range = part.Split('-');
                if (range.Length is 1 or 2 && range.All(r => int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                {
                    int a = int.Parse(range[0], CultureInfo.InvariantCulture), b = int.Parse(range[^1], CultureInfo.InvariantCulture);
                    if (b < a) throw new BadInputException($"--layer '{text}': the channel range {part} runs backwards.");
                    for (int c = a; c <= b; c++) channels.Add(c);
                }
                else throw new BadInputException($"--layer '{text}': channels must be numbers or ranges like 0-15, separated by commas.");
            }
            if (channels.Count == 0) throw new BadInputException($"--layer '{text}': no channels after ':'.");
            s = s[..colon];
        }
        if (s.Length == 0) throw new BadInputException($"--layer '{text}' names no layer.");
        return new LayerSpec(s, channels, weight);
    }

    /// <summary>Builds the L2 objective on <paramref name="network"/>, checking the layer and the channel range.</summary>
    public Objective ToObjective(INetwork network)
    {
        string tensor = network.ResolveLayer(Layer);
        var info = network.Layers.FirstOrDefault(l => l.Name == tensor || l.Aliases.Contains(tensor) || l.Name == Layer);
        if (Channels is not null && info is not null)
        {
            long n = info.Channels;
            int bad = Channels.FirstOrDefault(c => c >= n, -1);
            if (bad >= 0)
                throw new BadInputException($"Channel {bad} is out of range for layer '{Layer}', which has channels 0-{n - 1}.");
        }
        Objective o = new LayerL2(tensor, Channels, Layer);
        return Weight == 1 ? o : Weight * o;
    }

    /// <inheritdoc/>
    public override string ToString() => Layer + (Channels is null ? "" : ":" + string.Join(",", Channels)) + (Weight == 1 ? "" : "*" + Weight.ToString(CultureInfo.InvariantCulture));
}
