using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>
/// Computes the gradient of an objective with respect to an image, whole or tile by tile. With
/// tiles, each tile (plus an overlap margin that gives its border pixels real context) is run
/// through the network on its own and only the tile's centre gradient is kept, so peak memory
/// depends on the tile size, not on the image. Callers roll the image randomly each step, so
/// tile seams never stay in place.
/// </summary>
public sealed class GradientEvaluator(INetwork network, Objective objective)
{
    /// <summary>The network.</summary>
    public INetwork Network { get; } = network;
    /// <summary>The objective.</summary>
    public Objective Objective { get; set; } = objective;
    /// <summary>Tile size in pixels; 0 computes the whole image at once.</summary>
    public int Tile { get; init; }
    /// <summary>Context added around each tile, in pixels.</summary>
    public int Margin { get; init; } = 32;
    /// <summary>
    /// Precision of the network's computation (the network's weights must be in it): null keeps the
    /// image's; BFloat16 uses the CPU's bf16 units. The image, the gradient and the objective stay in float32.
    /// </summary>
    public ScalarType? ComputeType { get; init; }

    /// <summary>Returns (objective value, gradient) at <paramref name="image"/> [1,3,H,W].</summary>
    public (double Value, Tensor Gradient) Evaluate(Tensor image)
    {
        long h = image.shape[2], w = image.shape[3];
        if (Tile <= 0 || (h <= Tile && w <= Tile)) return Whole(image);
        var grad = zeros_like(image);
        double total = 0;
        for (long y = 0; y < h; y += Tile)
        for (long x = 0; x < w; x += Tile)
        {
            using var scope = NewDisposeScope();
            long th = Math.Min(Tile, h - y), tw = Math.Min(Tile, w - x);
            long y0 = Math.Max(0, y - Margin), x0 = Math.Max(0, x - Margin);
            long y1 = Math.Min(h, y + th + Margin), x1 = Math.Min(w, x + tw + Margin);
            var crop = image.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0);
            var (v, g) = Whole(crop);
            total += v;
            using (no_grad())
                grad.narrow(2, y, th).narrow(3, x, tw).copy_(g.narrow(2, y - y0, th).narrow(3, x - x0, tw));
        }
        return (total, grad);
    }

    (double, Tensor) Whole(Tensor image)
    {
        using var scope = NewDisposeScope();
        var x = image.detach().requires_grad_(true); // shares the image's memory; nothing writes to it here
        var input = ComputeType is { } ct && ct != x.dtype ? x.to(ct) : x;
        IReadOnlyDictionary<string, Tensor> acts = Network.Forward(input, Objective.Layers.ToList());
        if (!ReferenceEquals(input, x)) acts = acts.ToDictionary(kv => kv.Key, kv => kv.Value.to(x.dtype));
        var value = Objective.Evaluate(acts);
        value.backward();
        double v = value.to(ScalarType.Float64).item<double>();
        return (v, x.grad!.detach().MoveToOuterDisposeScope());
    }
}
