namespace Reverie.Science;

/// <summary>
/// A least-squares fit z ≈ w1·a1 + w2·a2 + c of one latent neuron, sampled on a grid over two
/// angles (the torus [0, 2π)²), to those angles, wrap-aware.
/// </summary>
/// <remarks>
/// A latent state that moves by a constant step cannot hold an angle without a jump somewhere on
/// its circle, and the encoder chooses where (for SciNet, where an observed angle wraps, which is
/// a curve in heliocentric coordinates, not a straight cut). So the fit is made on the regions
/// the encoder covers without a jump: the grid is split along jumps (neighbouring values that
/// differ by more than a fifth of the latent's range) into connected regions; within a region the
/// angles are unwrapped continuously; each region may sit one turn higher or lower in each angle
/// (the fit picks the best of −1, 0, +1 per region and angle). Regions smaller than 0.5% of the
/// grid are left out and counted in <see cref="Excluded"/>.
/// </remarks>
internal sealed record LinearFit(double R2, double W1, double W2, double C, int Regions, double Excluded, float[,] Fitted);

/// <summary>How one latent neuron relates to the heliocentric and to the geocentric angles.</summary>
internal sealed record NeuronReport(int Neuron, LinearFit Heliocentric, LinearFit Geocentric);

/// <summary>Fits latent neurons to angles.</summary>
internal static class LatentAnalysis
{
    /// <summary>Side of the angle grids the latents are sampled on.</summary>
    public const int Side = 90;

    /// <summary>The angle at grid index k of <paramref name="n"/> (cell centres).</summary>
    public static double Angle(int k, int n) => 2 * Math.PI * (k + 0.5) / n;

    /// <summary>Fits a latent map z[i, j] (row i: the second angle, column j: the first) as described on <see cref="LinearFit"/>.</summary>
    public static LinearFit Fit(float[,] z, double jumpFraction = 0.2)
    {
        int n = z.GetLength(0), m = z.GetLength(1);
        var all = z.Cast<float>().ToArray();
        double lo = all.Min(), hi = all.Max(), tau = jumpFraction * (hi - lo);
        var fitted = new float[n, m];
        if (!(hi > lo)) return new LinearFit(0, 0, 0, lo, 1, 0, fitted);

        // Regions: flood fill over the torus without crossing a jump, unwrapping the angles.
        var region = new int[n, m];
        var lift1 = new int[n, m];
        var lift2 = new int[n, m];
        for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) region[i, j] = -1;
        var sizes = new List<int>();
        var queue = new Queue<(int, int)>();
        for (int i0 = 0; i0 < n; i0++)
        for (int j0 = 0; j0 < m; j0++)
        {
            if (region[i0, j0] >= 0) continue;
            int id = sizes.Count, size = 0;
            region[i0, j0] = id;
            queue.Enqueue((i0, j0));
            while (queue.Count > 0)
            {
                var (i, j) = queue.Dequeue();
                size++;
                foreach (var (di, dj) in new[] { (1, 0), (-1, 0), (0, 1), (0, -1) })
                {
                    int ni = i + di, nj = j + dj, l2 = lift2[i, j], l1 = lift1[i, j];
                    if (ni < 0) { ni += n; l2--; } else if (ni >= n) { ni -= n; l2++; }
                    if (nj < 0) { nj += m; l1--; } else if (nj >= m) { nj -= m; l1++; }
                    if (region[ni, nj] >= 0 || Math.Abs(z[ni, nj] - z[i, j]) > tau) continue;
                    region[ni, nj] = id; lift1[ni, nj] = l1; lift2[ni, nj] = l2;
                    queue.Enqueue((ni, nj));
                }
            }
            sizes.Add(size);
        }
        var kept = Enumerable.Range(0, sizes.Count).Where(r => sizes[r] >= 0.005 * n * m).OrderByDescending(r => sizes[r]).Take(8).ToList();
        var slot = Enumerable.Repeat(-1, sizes.Count).ToArray();
        for (int k = 0; k < kept.Count; k++) slot[kept[k]] = k;

        // The best turn offsets per region: exhaustive over up to 4 regions besides the largest
        // (which stays at 0), then coordinate descent for the rest.
        var offsets = new (int A, int B)[kept.Count];
        var choices = (from a in new[] { 0, -1, 1 } from b in new[] { 0, -1, 1 } select (a, b)).ToArray();
        (double R2, double[] W) Solve() => LeastSquares(z, region, slot, lift1, lift2, offsets);
        var best = Solve();
        int exhaustive = Math.Min(kept.Count - 1, 4);
        if (exhaustive > 0)
        {
            var bestOffsets = ((int, int)[])offsets.Clone();
            int combos = (int)Math.Pow(9, exhaustive);
            for (int c = 0; c < combos; c++)
            {
                int rest = c;
                for (int k = 1; k <= exhaustive; k++) { offsets[k] = choices[rest % 9]; rest /= 9; }
                var s = Solve();
                if (s.R2 > best.R2) { best = s; bestOffsets = ((int, int)[])offsets.Clone(); }
            }
            offsets = bestOffsets;
        }
        for (int pass = 0; pass < 3; pass++)
            for (int k = exhaustive + 1; k < kept.Count; k++)
            {
                var keep = offsets[k];
                foreach (var ch in choices)
                {
                    offsets[k] = ch;
                    var s = Solve();
                    if (s.R2 > best.R2) { best = s; keep = ch; }
                }
                offsets[k] = keep;
            }
        best = Solve();
        int excluded = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                int k = slot[region[i, j]];
                if (k < 0) { fitted[i, j] = float.NaN; excluded++; continue; }
                var (u, v) = Unwrapped(i, j, n, m, lift1, lift2, offsets[k]);
                fitted[i, j] = (float)(best.W[0] * u + best.W[1] * v + best.W[2]);
            }
        return new LinearFit(best.R2, best.W[0], best.W[1], best.W[2], kept.Count, excluded / (double)(n * m), fitted);
    }

    static (double U, double V) Unwrapped(int i, int j, int n, int m, int[,] lift1, int[,] lift2, (int A, int B) offset) =>
        (Angle(j, m) + 2 * Math.PI * (lift1[i, j] + offset.A), Angle(i, n) + 2 * Math.PI * (lift2[i, j] + offset.B));

    static (double R2, double[] W) LeastSquares(float[,] z, int[,] region, int[] slot, int[,] lift1, int[,] lift2, (int A, int B)[] offsets)
    {
        int n = z.GetLength(0), m = z.GetLength(1);
        double suu = 0, suv = 0, svv = 0, su = 0, sv = 0, suz = 0, svz = 0, sz = 0, szz = 0, count = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                int k = slot[region[i, j]];
                if (k < 0) continue;
                var (u, v) = Unwrapped(i, j, n, m, lift1, lift2, offsets[k]);
                double zk = z[i, j];
                suu += u * u; suv += u * v; svv += v * v; su += u; sv += v; suz += u * zk; svz += v * zk; sz += zk; szz += zk * zk; count++;
            }
        var w = Solve3([suu, suv, su, suv, svv, sv, su, sv, count], [suz, svz, sz]) ?? [0, 0, sz / count];
        // Residual sum of squares from the sums: |z - Aw|² = zz - 2 w·(A'z) + w'(A'A)w.
        double[] atz = [suz, svz, sz];
        double[,] ata = { { suu, suv, su }, { suv, svv, sv }, { su, sv, count } };
        double ssRes = szz;
        for (int a = 0; a < 3; a++)
        {
            ssRes -= 2 * w[a] * atz[a];
            for (int b = 0; b < 3; b++) ssRes += w[a] * ata[a, b] * w[b];
        }
        double ssTot = szz - sz * sz / count;
        return (ssTot > 0 ? 1 - Math.Max(0, ssRes) / ssTot : 0, w);
    }

    /// <summary>Solves a 3x3 system (row-major) by Cramer's rule; null when singular.</summary>
    static double[]? Solve3(double[] m, double[] b)
    {
        static double Det(double[] a) => a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6]);
        double d = Det(m);
        if (Math.Abs(d) < 1e-12 * Math.Max(1, m.Max(Math.Abs))) return null;
        var x = new double[3];
        for (int c = 0; c < 3; c++)
        {
            var mc = (double[])m.Clone();
            for (int r = 0; r < 3; r++) mc[r * 3 + c] = b[r];
            x[c] = Det(mc) / d;
        }
        return x;
    }

    /// <summary>
    /// Samples <paramref name="encoder"/> (observed angles θS, θM → one array per latent neuron)
    /// on a grid of heliocentric angles (φE, φM) and on a grid of geocentric ones (θS, θM), and
    /// fits each neuron on both. Returns the reports and the heliocentric latent maps.
    /// </summary>
    public static (List<NeuronReport> Reports, List<float[,]> HelioMaps) Analyze(Func<double[], double[], double[][]> encoder, int side = Side)
    {
        var helio = Maps(encoder, side, (a1, a2) => Orbits.Observe(a1, a2));
        var geo = Maps(encoder, side, (a1, a2) => (a1, a2));
        var reports = helio.Select((h, k) => new NeuronReport(k, Fit(h), Fit(geo[k]))).ToList();
        return (reports, helio);
    }

    /// <summary>The latents on a grid over two angles, mapped to observations by <paramref name="observe"/>: map[i, j] has a2 = Angle(i), a1 = Angle(j).</summary>
    public static List<float[,]> Maps(Func<double[], double[], double[][]> encoder, int side, Func<double, double, (double ThetaSun, double ThetaMars)> observe)
    {
        var obs = new (double S, double M)[side * side];
        for (int i = 0; i < side; i++) for (int j = 0; j < side; j++) obs[i * side + j] = observe(Angle(j, side), Angle(i, side));
        var z = encoder(obs.Select(o => o.S).ToArray(), obs.Select(o => o.M).ToArray());
        return z.Select(zk =>
        {
            var map = new float[side, side];
            for (int i = 0; i < side; i++) for (int j = 0; j < side; j++) map[i, j] = (float)zk[i * side + j];
            return map;
        }).ToList();
    }

    /// <summary>The hand-built Copernican encoder: its two latents are exactly φE and φM, in [0, 2π).</summary>
    public static double[][] CopernicanEncoder(double[] thetaSun, double[] thetaMars)
    {
        var helio = thetaSun.Select((s, i) => Orbits.Heliocentric(s, thetaMars[i])).ToArray();
        return [helio.Select(h => h.PhiEarth).ToArray(), helio.Select(h => h.PhiMars).ToArray()];
    }
}
