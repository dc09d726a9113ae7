using static TorchSharp.torch;

namespace Reverie.Imaging;

/// <summary>
/// SLIC superpixels (Achanta et al. 2012, "SLIC Superpixels Compared to State-of-the-Art Superpixel
/// Methods"): k-means over CIELAB colour and position, each centre searching a 2S×2S window, then
/// every label made one connected region (fragments join a neighbour). Deterministic.
/// </summary>
internal static class Superpixels
{
    /// <summary>
    /// Labels 0..K-1 for each pixel (row-major, height × width) of <paramref name="image"/> [1,3,H,W]
    /// in 0..1, about <paramref name="count"/> regions; <paramref name="compactness"/> weighs position
    /// against colour (10 is SLIC's usual value for CIELAB).
    /// </summary>
    public static (int[] Labels, int Count) Slic(Tensor image, int count, double compactness = 10, int iterations = 10)
    {
        int h = (int)image.shape[2], w = (int)image.shape[3], n = h * w;
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count));
        count = Math.Min(count, n);
        var lab = ToLab(image);
        double s = Math.Sqrt((double)n / count);
        // Centres on a regular grid, moved to the lowest colour gradient of their 3x3 neighbourhood.
        var centres = new List<double[]>(); // l, a, b, y, x
        int rows = Math.Max(1, (int)Math.Round(h / s)), cols = Math.Max(1, (int)Math.Round(w / s));
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int y = (int)((r + 0.5) * h / rows), x = (int)((c + 0.5) * w / cols);
                (y, x) = LowestGradient(lab, h, w, y, x);
                int i = y * w + x;
                centres.Add([lab[0][i], lab[1][i], lab[2][i], y, x]);
            }
        int k = centres.Count;
        var labels = new int[n];
        var best = new double[n];
        double spatial = compactness / s;
        int reach = (int)Math.Ceiling(s);
        for (int it = 0; it < iterations; it++)
        {
            Array.Fill(best, double.MaxValue);
            Array.Fill(labels, -1);
            for (int c = 0; c < k; c++)
            {
                var ct = centres[c];
                int cy = (int)Math.Round(ct[3]), cx = (int)Math.Round(ct[4]);
                for (int y = Math.Max(0, cy - reach); y < Math.Min(h, cy + reach + 1); y++)
                    for (int x = Math.Max(0, cx - reach); x < Math.Min(w, cx + reach + 1); x++)
                    {
                        int i = y * w + x;
                        double dl = lab[0][i] - ct[0], da = lab[1][i] - ct[1], db = lab[2][i] - ct[2];
                        double dy = (y - ct[3]) * spatial, dx = (x - ct[4]) * spatial;
                        double d = dl * dl + da * da + db * db + dy * dy + dx * dx;
                        if (d < best[i]) { best[i] = d; labels[i] = c; }
                    }
            }
            // Pixels no window reached (only on odd grids) take the nearest centre by position.
            for (int i = 0; i < n; i++)
                if (labels[i] < 0) labels[i] = Nearest(centres, i / w, i % w);
            var sums = new double[k, 6];
            for (int i = 0; i < n; i++)
            {
                int c = labels[i];
                sums[c, 0] += lab[0][i]; sums[c, 1] += lab[1][i]; sums[c, 2] += lab[2][i];
                sums[c, 3] += i / w; sums[c, 4] += i % w; sums[c, 5] += 1;
            }
            for (int c = 0; c < k; c++)
                if (sums[c, 5] > 0)
                    for (int j = 0; j < 5; j++) centres[c][j] = sums[c, j] / sums[c, 5];
        }
        return Connect(labels, h, w, Math.Max(1, n / k / 4));
    }

    static int Nearest(List<double[]> centres, int y, int x)
    {
        int best = 0; double bd = double.MaxValue;
        for (int c = 0; c < centres.Count; c++)
        {
            double d = (centres[c][3] - y) * (centres[c][3] - y) + (centres[c][4] - x) * (centres[c][4] - x);
            if (d < bd) { bd = d; best = c; }
        }
        return best;
    }

    static (int Y, int X) LowestGradient(double[][] lab, int h, int w, int y0, int x0)
    {
        (int, int) best = (y0, x0); double bg = double.MaxValue;
        for (int y = Math.Max(1, y0 - 1); y <= Math.Min(h - 2, y0 + 1); y++)
            for (int x = Math.Max(1, x0 - 1); x <= Math.Min(w - 2, x0 + 1); x++)
            {
                double g = 0;
                for (int ch = 0; ch < 3; ch++)
                {
                    double gx = lab[ch][y * w + x + 1] - lab[ch][y * w + x - 1], gy = lab[ch][(y + 1) * w + x] - lab[ch][(y - 1) * w + x];
                    g += gx * gx + gy * gy;
                }
                if (g < bg) { bg = g; best = (y, x); }
            }
        return best;
    }

    /// <summary>
    /// Relabels <paramref name="labels"/> so that every label is one 4-connected region, numbered in
    /// scan order; regions under <paramref name="minSize"/> pixels join the region before them.
    /// </summary>
    internal static (int[] Labels, int Count) Connect(int[] labels, int h, int w, int minSize)
    {
        int n = h * w;
        var result = new int[n];
        Array.Fill(result, -1);
        var stack = new Stack<int>();
        var members = new List<int>();
        int next = 0;
        for (int start = 0; start < n; start++)
        {
            if (result[start] >= 0) continue;
            // The region already labelled that touches this one first (to the left or above): where a fragment goes.
            int adjacent = -1;
            int sy = start / w, sx = start % w;
            if (sx > 0 && result[start - 1] >= 0) adjacent = result[start - 1];
            else if (sy > 0 && result[start - w] >= 0) adjacent = result[start - w];
            members.Clear();
            stack.Push(start);
            result[start] = next;
            while (stack.Count > 0)
            {
                int i = stack.Pop();
                members.Add(i);
                int y = i / w, x = i % w;
                Span<int> nb = [x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1, y < h - 1 ? i + w : -1];
                foreach (int j in nb)
                    if (j >= 0 && result[j] < 0 && labels[j] == labels[start]) { result[j] = next; stack.Push(j); }
            }
            if (members.Count < minSize && adjacent >= 0)
                foreach (int i in members) result[i] = adjacent;
            else next++;
        }
        return (result, next);
    }

    /// <summary>CIELAB (D65) of an image [1,3,H,W] in 0..1 (sRGB), as three planes.</summary>
    static double[][] ToLab(Tensor image)
    {
        var px = image[0].detach().to(CPU).to(ScalarType.Float64).contiguous().data<double>().ToArray();
        int n = px.Length / 3;
        var lab = new[] { new double[n], new double[n], new double[n] };
        static double Linear(double c) => c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
        static double F(double t) => t > 216.0 / 24389 ? Math.Cbrt(t) : (24389.0 / 27 * t + 16) / 116;
        for (int i = 0; i < n; i++)
        {
            double r = Linear(Math.Clamp(px[i], 0, 1)), g = Linear(Math.Clamp(px[n + i], 0, 1)), b = Linear(Math.Clamp(px[2 * n + i], 0, 1));
            double x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
            double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
            double z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883;
            double fx = F(x), fy = F(y), fz = F(z);
            lab[0][i] = 116 * fy - 16;
            lab[1][i] = 500 * (fx - fy);
            lab[2][i] = 200 * (fy - fz);
        }
        return lab;
    }
}
