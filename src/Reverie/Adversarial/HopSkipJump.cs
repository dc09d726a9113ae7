using Reverie.Optimization;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>
/// HopSkipJump, L2 (Chen, Jordan and Wainwright, 2020): a decision-based black box that reads only the
/// model's top label. It starts from uniform noise the model already gets wrong (targeted: calls the
/// target), then repeats: a binary search along the line to the photo finds the boundary (to θ =
/// d^(−3/2) of the line), the boundary's normal is estimated from the labels of random Gaussian
/// probes around that point (100·√t of them at iteration t, at a radius that shrinks with the
/// distance, with the paper's baseline subtracted), and a geometric search along the normal (from
/// distance/√t, halving) steps to a point the model still gets wrong. Each image of a batch has its own
/// state; the queries of all open images go through the model together. <see cref="AttackOptions.Steps"/>
/// is the query budget per image: an iteration starts only when it fits. eps, when above 0, is an L2
/// bound: the attack stops once it is within it, and a result still outside is pulled back onto the
/// ball. A gray image (three equal channels) is probed with gray noise. Its own loop: a random search
/// on labels, not a gradient step.
/// </summary>
internal static class HopSkipJump
{
    /// <summary>Probes at the first iteration (√t times as many at iteration t, at most <see cref="MaxProbes"/>).</summary>
    public const int InitialProbes = 100;
    /// <summary>The most probes one iteration uses.</summary>
    public const int MaxProbes = 10_000;
    /// <summary>Draws of uniform noise per image to find a start the model gets wrong.</summary>
    public const int StartDraws = 100;
    /// <summary>Halvings of the geometric step search before an iteration gives up moving.</summary>
    const int Halvings = 10;

    /// <summary>
    /// Attacks images [N,3,H,W] (0..1) with labels [N] through <paramref name="topLabel"/> (images → predicted labels [N]).
    /// The result's terms hold "queries" (mean per image) and "fooled" (the fraction). With <paramref name="eightBit"/> the
    /// result is moved out along its line from the photo, a little at a time, until it is still wrong when rounded to 8 bits
    /// a channel, as it will be saved.
    /// </summary>
    public static OptimizationResult Run(Func<Tensor, Tensor> topLabel, Tensor images, Tensor labels, AttackOptions o, IProgress<OptimizationStep>? progress, CancellationToken cancel, bool eightBit = false)
    {
        using var noGrad = no_grad();
        var x0 = images.detach().to(ScalarType.Float32);
        var device = x0.device;
        long n = x0.shape[0], c = x0.shape[1], h = x0.shape[2], w = x0.shape[3];
        var y = labels.to(ScalarType.Int64).cpu().data<long>().ToArray();
        long signed = Attack.IsGray(x0) ? 1 : c;
        double d = signed * h * w;
        double theta = 1 / (d * Math.Sqrt(d));
        int searchQueries = (int)Math.Ceiling(Math.Log2(1 / theta));
        int budget = o.Steps;
        long rowsPerCall = Math.Max(1, (1L << 22) / (c * h * w));
        // Images per call of the model: small enough that its activations (tens of channels a pixel) stay
        // below glibc's mmap threshold and are reused from the heap. At 4M values a call, every call's
        // activations were fresh pages (a 32-channel Fashion-MNIST layer, 537 MB): half the time went to
        // page faults, and the test of 30 images took 9.5 minutes.
        long queryRows = Math.Max(1, (1L << 17) / (c * h * w));
        var gen = new Generator((ulong)o.Seed);
        var queries = new long[n];
        bool cancelled = false;

        // The model's verdict on images [m,C,H,W] owned by rows[m]: true where it is fooled. One query each.
        bool[] Fooled(Tensor x, long[] rows)
        {
            var verdict = new bool[rows.Length];
            for (long s = 0; s < rows.Length; s += queryRows)
            {
                using var scope = NewDisposeScope();
                long m = Math.Min(queryRows, rows.Length - s);
                var labelsOut = topLabel(x.narrow(0, s, m)).cpu().data<long>().ToArray();
                for (int k = 0; k < m; k++)
                {
                    long i = rows[s + k];
                    queries[i]++;
                    verdict[s + k] = o.Target is { } t ? labelsOut[k] == t : labelsOut[k] != y[i];
                }
            }
            return verdict;
        }
        Tensor Rows(long[] rows) => tensor(rows, device: device);
        Tensor Noise(long m, Func<long[], Tensor> draw) => draw([m, signed, h, w]).to(device).expand(m, c, h, w);
        Tensor Column(double[] v) => tensor(v.Select(e => (float)e).ToArray(), device: device).view(-1, 1, 1, 1);

        // The point on the segment from the photo to adv [m,…] (fooled) nearest the boundary, to θ of the segment.
        Tensor Boundary(long[] rows, Tensor adv)
        {
            var a = x0.index_select(0, Rows(rows));
            var lo = new double[rows.Length];
            var hi = Enumerable.Repeat(1.0, rows.Length).ToArray();
            for (int k = 0; k < searchQueries; k++)
            {
                using var scope = NewDisposeScope();
                var mid = lo.Zip(hi, (l, u) => (l + u) / 2).ToArray();
                var fooled = Fooled(a + (adv - a) * Column(mid), rows);
                for (int j = 0; j < rows.Length; j++) if (fooled[j]) hi[j] = mid[j]; else lo[j] = mid[j];
            }
            return a + (adv - a) * Column(hi);
        }

        // A start: uniform noise the model gets wrong, then the boundary between it and the photo. An image the model
        // already gets wrong is left as it is (its boundary is the photo itself).
        var x = x0.clone();
        var found = new bool[n];
        var wrong = Fooled(x0, Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray());
        for (int draw = 0; draw < StartDraws && !cancelled; draw++)
        {
            var open = Enumerable.Range(0, (int)n).Where(i => !found[i] && !wrong[i] && queries[i] < budget).Select(i => (long)i).ToArray();
            if (open.Length == 0) break;
            if (cancel.IsCancellationRequested) { cancelled = true; break; }
            using var scope = NewDisposeScope();
            var noise = Noise(open.Length, shape => rand(shape, generator: gen));
            var fooled = Fooled(noise, open);
            var hits = Enumerable.Range(0, open.Length).Where(k => fooled[k]).Select(k => (long)k).ToArray();
            if (hits.Length == 0) continue;
            var rows = hits.Select(k => open[k]).ToArray();
            x.index_copy_(0, Rows(rows), noise.index_select(0, Rows(hits)));
            foreach (var i in rows) found[i] = true;
        }
        // (A budget too small for the search keeps the noise itself.)
        var started = Enumerable.Range(0, (int)n).Where(i => found[i] && budget - queries[i] >= searchQueries).Select(i => (long)i).ToArray();
        if (started.Length > 0 && !cancelled)
            using (var scope = NewDisposeScope())
                x.index_copy_(0, Rows(started), Boundary(started, x.index_select(0, Rows(started))));
        var dist = (x - x0).flatten(1).norm(1).cpu().data<float>().Select(v => (double)v).ToArray();

        int t = 1;
        for (; !cancelled; t++)
        {
            int probes = (int)Math.Min(InitialProbes * Math.Sqrt(t), MaxProbes);
            var open = Enumerable.Range(0, (int)n)
                .Where(i => found[i] && dist[i] > 0 && !(o.Eps > 0 && dist[i] <= o.Eps) && budget - queries[i] >= probes + Halvings + searchQueries)
                .Select(i => (long)i).ToArray();
            if (open.Length == 0) break;
            if (cancel.IsCancellationRequested) { cancelled = true; break; }
            using var scope = NewDisposeScope();
            using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the iteration
            var rows = Rows(open);
            var at = x.index_select(0, rows);
            // The probes' radius: 0.1 of the pixel range at first, then √d·θ times the distance.
            var delta = open.Select(i => t == 1 ? 0.1 : Math.Sqrt(d) * theta * dist[i]).ToArray();
            var normal = zeros_like(at);
            long perCall = Math.Max(1, rowsPerCall / Math.Max(1, probes));
            for (int g = 0; g < open.Length; g += (int)perCall)
            {
                using var inner = NewDisposeScope();
                int m = (int)Math.Min(perCall, open.Length - g);
                var sumFr = zeros([m, c, h, w], device: device);
                var sumR = zeros([m, c, h, w], device: device);
                var sumF = new double[m];
                for (int p0 = 0; p0 < probes; p0 += (int)Math.Max(1, rowsPerCall / m))
                {
                    using var chunkScope = NewDisposeScope();
                    int k = (int)Math.Min(Math.Max(1, rowsPerCall / m), probes - p0);
                    var u = Noise(m * k, shape => randn(shape, generator: gen)).reshape(m, k, c, h, w);
                    u = u / u.flatten(2).norm(2).view(m, k, 1, 1, 1);
                    var centre = at.narrow(0, g, m).unsqueeze(1);
                    var dl = Column(delta.Skip(g).Take(m).ToArray()).view(m, 1, 1, 1, 1);
                    var probe = (centre + dl * u).clamp(S(0), S(1));
                    var r = (probe - centre) / dl;
                    var owners = Enumerable.Range(g, m).SelectMany(j => Enumerable.Repeat(open[j], k)).ToArray();
                    var f = Fooled(probe.reshape(m * k, c, h, w), owners);
                    var fs = tensor(f.Select(b => b ? 1f : -1f).ToArray(), device: device).view(m, k, 1, 1, 1);
                    sumFr.add_((fs * r).sum([1]));
                    sumR.add_(r.sum([1]));
                    for (int j = 0; j < m; j++) sumF[j] += f.Skip(j * k).Take(k).Sum(b => b ? 1.0 : -1.0);
                }
                // The mean of f·r with the mean of f subtracted (the paper's baseline); all probes on one side: ±mean r.
                var mean = sumF.Select(s => s / probes).ToArray();
                var est = Enumerable.Range(0, m).Select(j => Math.Abs(mean[j]) == 1
                    ? sumR.narrow(0, j, 1) * S(mean[j] / probes)
                    : sumFr.narrow(0, j, 1) * S(1.0 / probes) - sumR.narrow(0, j, 1) * S(mean[j] / probes)).ToArray();
                normal.narrow(0, g, m).copy_(cat(est, 0));
            }
            normal = normal / normal.flatten(1).norm(1).clamp_min(S(1e-12)).view(-1, 1, 1, 1);
            // Geometric search: from distance/√t, halving, to a point still wrong.
            var step = open.Select(i => dist[i] / Math.Sqrt(t)).ToArray();
            var moved = new Tensor?[open.Length];
            var pending = Enumerable.Range(0, open.Length).ToArray();
            for (int k = 0; k < Halvings && pending.Length > 0; k++)
            {
                var idx = tensor(pending.Select(j => (long)j).ToArray(), device: device);
                var cand = (at.index_select(0, idx) + normal.index_select(0, idx) * Column(pending.Select(j => step[j]).ToArray())).clamp(S(0), S(1));
                var fooled = Fooled(cand, pending.Select(j => open[j]).ToArray());
                for (int q = 0; q < pending.Length; q++)
                    if (fooled[q]) moved[pending[q]] = cand[q]; else step[pending[q]] /= 2;
                pending = pending.Where((_, q) => !fooled[q]).ToArray();
            }
            var went = Enumerable.Range(0, open.Length).Where(j => moved[j] is not null).ToArray();
            if (went.Length > 0)
            {
                var wentRows = went.Select(j => open[j]).ToArray();
                var onBoundary = Boundary(wentRows, stack(went.Select(j => moved[j]!).ToArray()));
                var wentIdx = Rows(wentRows);
                x.index_copy_(0, wentIdx, onBoundary);
                var nd = (onBoundary - x0.index_select(0, wentIdx)).flatten(1).norm(1).cpu().data<float>().ToArray();
                for (int j = 0; j < wentRows.Length; j++) dist[wentRows[j]] = nd[j];
            }
            int spent = (int)Math.Min(queries.Sum() / n, budget); // progress in queries per image
            progress?.Report(new OptimizationStep(0, 1, spent, budget, found.Select((f, i) => f ? dist[i] : 0).Where(v => v > 0).DefaultIfEmpty(0).Average(),
                new Dictionary<string, double> { ["queries"] = queries.Average() })
            { Done = spent, Total = budget, Image = () => x });
        }

        // Outside the bound: pulled back onto the ball (no longer wrong, most likely).
        var result = x.clone();
        for (int i = 0; i < n; i++)
            if (o.Eps > 0 && dist[i] > o.Eps)
                result[i] = x0[i] + (x[i] - x0[i]) * S(o.Eps / dist[i]);
        var foundRows = Enumerable.Range(0, (int)n).Where(i => found[i]).Select(i => (long)i).ToArray();
        if (eightBit && foundRows.Length > 0)
            Settle(result, x0, foundRows, o.Eps, Fooled);
        var after = Fooled(result, Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray());
        for (int i = 0; i < n; i++) queries[i]--; // the check above is the caller's, not the attack's
        var terms = new Dictionary<string, double> { ["queries"] = queries.Average(), ["fooled"] = after.Count(v => v) / (double)n };
        return new OptimizationResult(result, t - 1, cancelled, dist.Average(), terms);
    }

    /// <summary>Moves each started image out along its line from the photo (1% of its change at a time, 20 times at most) until, rounded to 8 bits, it is still wrong and within eps.</summary>
    static void Settle(Tensor result, Tensor x0, long[] rows, double eps, Func<Tensor, long[], bool[]> fooled)
    {
        var pending = rows.ToList();
        for (int k = 0; k <= 20 && pending.Count > 0; k++)
        {
            using var scope = NewDisposeScope();
            var idx = tensor(pending.ToArray(), device: x0.device);
            var a = x0.index_select(0, idx);
            var cand = (a + (result.index_select(0, idx) - a) * S(1 + 0.01 * k)).clamp(S(0), S(1)).mul(S(255)).round_().div_(S(255));
            var ok = fooled(cand, pending.ToArray());
            var within = (cand - a).flatten(1).norm(1).cpu().data<float>().ToArray();
            var done = new List<long>();
            for (int j = 0; j < pending.Count; j++)
                if (ok[j] && (eps <= 0 || within[j] <= eps)) { result[pending[j]] = cand[j]; done.Add(pending[j]); }
            pending.RemoveAll(done.Contains);
        }
    }
}
