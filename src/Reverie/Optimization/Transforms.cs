using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>A differentiable change applied to the image before the network sees it (jitter, scale, rotate...).</summary>
public interface ITransform
{
    /// <summary>Applies the transform with random choices drawn from <paramref name="rng"/>.</summary>
    Tensor Apply(Tensor image, Random rng);
}

/// <summary>
/// DeepDream's jitter: a random circular shift by up to <see cref="Max"/> pixels on each axis.
/// Because the gradient flows back through the roll, it arrives un-rolled: the shift is undone
/// for free. The offsets drawn are recorded, so that a run can be replayed (or compared with a
/// reference) offset for offset.
/// </summary>
public sealed class RandomRoll(int max) : ITransform
{
    /// <summary>The largest shift in pixels.</summary>
    public int Max { get; } = max;

    /// <summary>The (dx, dy) offsets drawn so far.</summary>
    public List<(int Dx, int Dy)> Drawn { get; } = new();

    /// <summary>When set, offsets are taken from here in order instead of being drawn.</summary>
    public Queue<(int Dx, int Dy)>? Scripted { get; init; }

    /// <summary>Draws the next offsets.</summary>
    public (int Dx, int Dy) Next(Random rng)
    {
        var o = Scripted is { Count: > 0 } q ? q.Dequeue() : (rng.Next(-Max, Max + 1), rng.Next(-Max, Max + 1));
        Drawn.Add(o);
        return o;
    }

    /// <inheritdoc/>
    public Tensor Apply(Tensor image, Random rng)
    {
        var (dx, dy) = Next(rng);
        return Roll(image, dx, dy);
    }

    /// <summary>Rolls an image [N,C,H,W] by dx columns and dy rows.</summary>
    public static Tensor Roll(Tensor image, int dx, int dy) =>
        dx == 0 && dy == 0 ? image.alias() : image.roll([dy, dx], [2, 3]);
}
