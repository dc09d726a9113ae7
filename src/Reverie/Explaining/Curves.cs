using Reverie.Imaging;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Explaining;

/// <summary>
/// Deletion and insertion curves (Petsiuk et al. 2018, "RISE"), by regions: how fast the class's
/// probability falls when the regions a map ranks highest are deleted first (set to black), and how
/// fast it rises when they are inserted first into a blurred copy of the photo (Gaussian, σ = 5 px).
/// A faithful map gives a low deletion area and a high insertion area; a random order of the same
/// regions (the mean of five) is the yardstick. Each curve has <see cref="Portions"/> + 1 points.
/// <para>
/// The unit is a square region (1/14 of the shorter side: 16 px at 224), ranked by the map's mean
/// over it, as in Samek et al. 2017's region perturbation, not a pixel as in the paper. Pixel by
/// pixel, the yardstick measured noise: scattered black pixels are nothing the network ever saw, and
/// a random order of them destroyed GoogLeNet's answer on chelsea.png within the first 3% (deletion
/// area 0.011, against Grad-CAM's 0.127); scattered blurred pixels did much the same. With regions,
/// every order makes the same kind of damage and the curves compare only where the evidence is.
/// </para>
/// </summary>
internal static class Curves
{
    /// <summary>The portions of the pixels between the curve's points.</summary>
    public const int Portions = 32;
    /// <summary>The blur that insertion starts from (Petsiuk et al.'s σ).</summary>
    public const double InsertionBlur = 5;

    /// <summary>One curve pair for one order of the pixels.</summary>
    public sealed record Pair(double[] Deletion, double[] Insertion)
    {
        /// <summary>The area under the deletion curve (the mean over [0,1], trapezoidal); lower is more faithful.</summary>
        public double DeletionAuc => Auc(Deletion);
        /// <summary>The area under the insertion curve; higher is more faithful.</summary>
        public double InsertionAuc => Auc(Insertion);
    }

    /// <summary>The network passes one pair of curves takes (<see cref="Random"/> takes <see cref="RandomOrders"/> times as many).</summary>
    public static int Passes => 2 * (Portions + 1);

    /// <summary>The side of a region for an image of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public static int RegionSide(long height, long width) => (int)Math.Max(1, Math.Round(Math.Min(height, width) / 14.0));

    /// <summary>The curves for the order of <paramref name="map"/> [H,W] (regions of highest mean first) on <paramref name="image"/> [1,3,H,W].</summary>
    public static Pair ForMap(INetwork net, Tensor image, int cls, Tensor map, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        using var scope = NewDisposeScope();
        int side = RegionSide(image.shape[2], image.shape[3]);
        var m = map.detach().to(ScalarType.Float32).to(image.device)[TensorIndex.None, TensorIndex.None];
        var means = nn.functional.avg_pool2d(m, side, side, ceil_mode: true, count_include_pad: false)[0, 0]; // [rows, cols]
        return ForOrder(net, image, cls, means.flatten().argsort(descending: true), means.shape[0], means.shape[1], side, progress, cancel);
    }

    /// <summary>How many random orders the yardstick averages: one order's area varies by a third from seed to seed.</summary>
    public const int RandomOrders = 5;

    /// <summary>The mean curves of <see cref="RandomOrders"/> seeded random orders of the regions.</summary>
    public static Pair Random(INetwork net, Tensor image, int cls, int seed, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        using var scope = NewDisposeScope();
        int side = RegionSide(image.shape[2], image.shape[3]);
        long rows = (image.shape[2] + side - 1) / side, cols = (image.shape[3] + side - 1) / side;
        var deletion = new double[Portions + 1];
        var insertion = new double[Portions + 1];
        for (int r = 0; r < RandomOrders; r++)
        {
            using var g = new TorchSharp.torch.Generator((ulong)seed + (ulong)r);
            int offset = r * Passes;
            var pair = ForOrder(net, image, cls, randperm(rows * cols, generator: g).to(image.device), rows, cols, side,
                progress is null ? null : new Jobs.SyncProgress<int>(n => progress.Report(offset + n)), cancel);
            for (int i = 0; i <= Portions; i++) { deletion[i] += pair.Deletion[i] / RandomOrders; insertion[i] += pair.Insertion[i] / RandomOrders; }
        }
        return new Pair(deletion, insertion);
    }

    /// <summary>The mean of a curve over [0,1] by the trapezoidal rule.</summary>
    public static double Auc(IReadOnlyList<double> curve)
    {
        double sum = 0;
        for (int i = 1; i < curve.Count; i++) sum += (curve[i - 1] + curve[i]) / 2;
        return sum / (curve.Count - 1);
    }

    static Pair ForOrder(INetwork net, Tensor image, int cls, Tensor order, long rows, long cols, int side, IProgress<int>? progress, CancellationToken cancel)
    {
        long h = image.shape[2], w = image.shape[3], n = rows * cols;
        // rank[r]: where region r comes in the order; the first k regions are those with rank < k. Spread over the pixels.
        var rank = empty_like(order).scatter_(0, order, arange(S(n), dtype: order.dtype, device: order.device)).reshape(rows, cols)
            .repeat_interleave(side, 0).repeat_interleave(side, 1).narrow(0, 0, h).narrow(1, 0, w).reshape(1, 1, h, w);
        var black = zeros_like(image);
        var blurred = Filters.GaussianBlur(image, InsertionBlur);
        int done = 0;
        double[] Run(Tensor start, Tensor end)
        {
            var values = new double[Portions + 1];
            using var noGrad = no_grad();
            for (int i0 = 0; i0 <= Portions; i0 += ClassScore.Batch)
            {
                cancel.ThrowIfCancellationRequested();
                using var s = NewDisposeScope();
                int count = Math.Min(ClassScore.Batch, Portions + 1 - i0);
                var ks = tensor(Enumerable.Range(i0, count).Select(i => (long)Math.Round((double)i * n / Portions)).ToArray(), device: image.device).reshape(count, 1, 1, 1);
                var moved = (rank < ks).to(image.dtype);                   // [count,1,H,W]: 1 where the pixel has moved to the end state
                var x = start * (S(1) - moved) + end * moved;
                var p = net.Probabilities(x).select(1, cls).to(ScalarType.Float64).cpu().data<double>().ToArray();
                Array.Copy(p, 0, values, i0, count);
                done += count;
                progress?.Report(done);
            }
            return values;
        }
        var deletion = Run(image, black);
        var insertion = Run(blurred, image);
        return new Pair(deletion, insertion);
    }
}
