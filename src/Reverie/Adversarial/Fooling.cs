using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Adversarial;

/// <summary>How a fooling image is encoded in its genome.</summary>
internal enum FoolingEncoding
{
    /// <summary>Every pixel is a gene (mutated by polynomial mutation).</summary>
    Direct,
    /// <summary>A compositional pattern-producing network of x, y, distance and bias.</summary>
    Cppn,
}

/// <summary>Settings of an evolution of fooling images.</summary>
internal sealed record FoolingOptions
{
    /// <summary>Genome encoding.</summary>
    public FoolingEncoding Encoding { get; init; } = FoolingEncoding.Cppn;
    /// <summary>Generations.</summary>
    public int Generations { get; init; } = 200;
    /// <summary>Individuals per generation.</summary>
    public int Population { get; init; } = 100;
    /// <summary>MAP-Elites over all classes (one archive cell per class) instead of one run per class.</summary>
    public bool MapElites { get; init; }
    /// <summary>Seed of every random choice.</summary>
    public int Seed { get; init; }
    /// <summary>Direct encoding: initial per-pixel mutation rate (halves every <see cref="HalvingGenerations"/>).</summary>
    public double MutationRate { get; init; } = 0.1;
    /// <summary>Direct encoding: generations between halvings of the mutation rate.</summary>
    public int HalvingGenerations { get; init; } = 50;
    /// <summary>Stop a class once its best confidence reaches this.</summary>
    public double StopAt { get; init; } = 0.9999;

    /// <summary>Checks the values.</summary>
    public void Validate()
    {
        if (Generations is < 1 or > 100_000) throw new BadInputException($"--generations must be from 1 to 100000; got {Generations}.");
        if (Population is < 2 or > 10_000) throw new BadInputException($"--population must be from 2 to 10000; got {Population}.");
        if (MutationRate is <= 0 or > 1) throw new BadInputException($"The mutation rate must be in (0, 1]; got {MutationRate}.");
    }
}

/// <summary>One generation's best confidence for one class.</summary>
internal sealed record FoolingLogEntry(int Generation, int Class, double BestConfidence, int Evaluations);

/// <summary>The best image found for a class.</summary>
internal sealed record FoolingResult(int Class, string Label, double Confidence, int Generation, Tensor Image);

/// <summary>
/// Evolves images that a classifier labels with high confidence although they show nothing of the
/// class (Nguyen, Yosinski and Clune's fooling images). Black-box: it reads only the model's output
/// probabilities, never a gradient. Direct encoding mutates pixels; the CPPN encoding evolves small
/// networks of sine, sigmoid, gaussian and linear nodes over (x, y, distance, bias), with weight and
/// structural mutations and crossover. Selection keeps the best (elitism); MAP-Elites keeps, for
/// every class, the individual that class's confidence is highest for, and breeds from the archive
/// (half of the parents drawn uniformly, half favouring the classes furthest from the target).
/// </summary>
internal sealed class FoolingEvolution
{
    readonly INetwork _net;
    readonly FoolingOptions _o;
    readonly Random _rng;
    readonly int _h, _w, _channels;
    readonly List<FoolingLogEntry> _log = new();

    /// <summary>Prepares an evolution against <paramref name="net"/>.</summary>
    public FoolingEvolution(INetwork net, FoolingOptions options)
    {
        options.Validate();
        if (net.Labels is null) throw new BadInputException($"{net.Name} has no class labels; fooling images need a classifier.");
        _net = net; _o = options; _rng = new Random(options.Seed);
        _h = net.Input.Height; _w = net.Input.Width; _channels = net.Input.ChannelCount;
    }

    /// <summary>Best confidence per generation and class.</summary>
    public IReadOnlyList<FoolingLogEntry> Log => _log;

    /// <summary>Evolves images for the given classes; returns the best for each.</summary>
    public List<FoolingResult> Run(IReadOnlyList<int> classes, IProgress<(int Done, int Total, double Best)>? progress = null, CancellationToken cancel = default)
    {
        if (classes.Count == 0) throw new BadInputException("Name at least one class to fool.");
        foreach (var c in classes)
            if (c < 0 || c >= _net.Labels!.Count) throw new BadInputException($"Class {c} does not exist in {_net.Name} ({_net.Labels!.Count} classes).");
        return _o.MapElites ? MapElites(classes, progress, cancel) : classes.Select((c, i) => Single(c, i, classes.Count, progress, cancel)).ToList();
    }

    FoolingResult Single(int cls, int index, int count, IProgress<(int, int, double)>? progress, CancellationToken cancel)
    {
        var pop = Enumerable.Range(0, _o.Population).Select(_ => NewGenome()).ToList();
        var fit = Probabilities(pop).Select(p => (double)p[cls]).ToArray();
        int evals = pop.Count, bestGen = 0;
        for (int g = 1; g <= _o.Generations; g++)
        {
            cancel.ThrowIfCancellationRequested();
            int eliteCount = Math.Max(1, _o.Population / 5);
            var order = Enumerable.Range(0, pop.Count).OrderByDescending(i => fit[i]).ToList();
            double before = fit[order[0]];
            var next = order.Take(eliteCount).Select(i => pop[i]).ToList();
            var nextFit = order.Take(eliteCount).Select(i => fit[i]).ToList();
            var children = new List<IGenome>();
            while (next.Count + children.Count < _o.Population)
            {
                var a = Tournament(pop, fit);
                var child = _o.Encoding == FoolingEncoding.Cppn && _rng.NextDouble() < 0.3 ? a.Crossover(Tournament(pop, fit), _rng) : a.Clone();
                child.Mutate(_rng, Rate(g));
                children.Add(child);
            }
            var probs = Probabilities(children);
            evals += children.Count;
            next.AddRange(children);
            nextFit.AddRange(probs.Select(p => (double)p[cls]));
            pop = next; fit = nextFit.ToArray();
            double best = fit.Max();
            if (best > before) bestGen = g;
            _log.Add(new FoolingLogEntry(g, cls, best, evals));
            progress?.Report((index * _o.Generations + g, count * _o.Generations, best));
            if (best >= _o.StopAt) break;
        }
        int bi = Array.IndexOf(fit, fit.Max());
        return new FoolingResult(cls, _net.Labels![cls], fit[bi], bestGen, Render([pop[bi]]));
    }

    List<FoolingResult> MapElites(IReadOnlyList<int> classes, IProgress<(int, int, double)>? progress, CancellationToken cancel)
    {
        var elite = new Dictionary<int, (IGenome G, double F, int Gen)>();
        void Offer(IReadOnlyList<IGenome> genomes, float[][] probs, int gen)
        {
            for (int i = 0; i < genomes.Count; i++)
                foreach (var c in classes)
                    if (!elite.TryGetValue(c, out var e) || probs[i][c] > e.F) elite[c] = (genomes[i], probs[i][c], gen);
        }
        var init = Enumerable.Range(0, _o.Population).Select(_ => NewGenome()).ToList();
        Offer(init, Probabilities(init), 0);
        int evals = init.Count;
        for (int g = 1; g <= _o.Generations; g++)
        {
            cancel.ThrowIfCancellationRequested();
            var cells = elite.Values.ToList();
            var children = new List<IGenome>();
            // Parents: half uniformly from the archive, half from the weaker of two random cells,
            // so that classes still far from the target get more offspring.
            IGenome Parent()
            {
                var x = cells[_rng.Next(cells.Count)];
                if (_rng.Next(2) == 0) return x.G;
                var y = cells[_rng.Next(cells.Count)];
                return x.F <= y.F ? x.G : y.G;
            }
            for (int i = 0; i < _o.Population; i++)
            {
                var a = Parent();
                var child = _o.Encoding == FoolingEncoding.Cppn && _rng.NextDouble() < 0.3 ? a.Crossover(Parent(), _rng) : a.Clone();
                child.Mutate(_rng, Rate(g));
                children.Add(child);
            }
            Offer(children, Probabilities(children), g);
            evals += children.Count;
            foreach (var c in classes) _log.Add(new FoolingLogEntry(g, c, elite[c].F, evals));
            double worst = classes.Min(c => elite[c].F);
            progress?.Report((g, _o.Generations, worst));
            if (worst >= _o.StopAt) break;
        }
        return classes.Select(c => new FoolingResult(c, _net.Labels![c], elite[c].F, elite[c].Gen, Render([elite[c].G]))).ToList();
    }

    double Rate(int generation) => _o.MutationRate * Math.Pow(0.5, (generation - 1) / Math.Max(1, _o.HalvingGenerations));

    IGenome Tournament(List<IGenome> pop, double[] fit)
    {
        int a = _rng.Next(pop.Count), b = _rng.Next(pop.Count);
        return fit[a] >= fit[b] ? pop[a] : pop[b];
    }

    IGenome NewGenome() => _o.Encoding == FoolingEncoding.Direct ? DirectGenome.Random(_h * _w * _channels, _rng) : CppnGenome.Random(_channels, _rng);

    /// <summary>RGB images [N,3,H,W] in 0..1 of the genomes.</summary>
    Tensor Render(IReadOnlyList<IGenome> genomes)
    {
        int plane = _h * _w;
        var buf = new float[genomes.Count * _channels * plane];
        Parallel.For(0, genomes.Count, i => genomes[i].Render(_h, _w, buf.AsSpan(i * _channels * plane, _channels * plane)));
        var t = tensor(buf, [genomes.Count, _channels, _h, _w]);
        return _channels == 1 ? t.expand(-1, 3, -1, -1).contiguous() : t;
    }

    float[][] Probabilities(IReadOnlyList<IGenome> genomes)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var result = new float[genomes.Count][];
        for (int start = 0; start < genomes.Count; start += 256)
        {
            var part = genomes.Skip(start).Take(256).ToList();
            var p = _net.Probabilities(Render(part).to(_net.Device)).to(ScalarType.Float32).cpu();
            var flat = p.data<float>().ToArray();
            int k = (int)p.shape[1];
            for (int i = 0; i < part.Count; i++) result[start + i] = flat.AsSpan(i * k, k).ToArray();
        }
        return result;
    }
}

/// <summary>A genome that renders an image and can mutate and mate.</summary>
internal interface IGenome
{
    void Render(int h, int w, Span<float> channelsMajor);
    void Mutate(Random rng, double rate);
    IGenome Clone();
    IGenome Crossover(IGenome other, Random rng);
}

/// <summary>One gene per pixel value, in 0..1; polynomial mutation (distribution index 20).</summary>
internal sealed class DirectGenome(float[] pixels) : IGenome
{
    public static DirectGenome Random(int n, Random rng)
    {
        var p = new float[n];
        for (int i = 0; i < n; i++) p[i] = (float)rng.NextDouble();
        return new DirectGenome(p);
    }

    public void Render(int h, int w, Span<float> target) => pixels.AsSpan().CopyTo(target);

    public void Mutate(Random rng, double rate)
    {
        const double eta = 20;
        for (int i = 0; i < pixels.Length; i++)
        {
            if (rng.NextDouble() >= rate) continue;
            double u = rng.NextDouble(), x = pixels[i];
            double delta = u < 0.5
                ? Math.Pow(2 * u + (1 - 2 * u) * Math.Pow(1 - x, eta + 1), 1 / (eta + 1)) - 1
                : 1 - Math.Pow(2 * (1 - u) + 2 * (u - 0.5) * Math.Pow(x, eta + 1), 1 / (eta + 1));
            pixels[i] = (float)Math.Clamp(x + delta, 0, 1);
        }
    }

    public IGenome Clone() => new DirectGenome((float[])pixels.Clone());

    public IGenome Crossover(IGenome other, Random rng)
    {
        var o = ((DirectGenome)other).Pixels;
        var c = new float[pixels.Length];
        for (int i = 0; i < c.Length; i++) c[i] = rng.Next(2) == 0 ? pixels[i] : o[i];
        return new DirectGenome(c);
    }

    public float[] Pixels => pixels;
}

/// <summary>
/// A CPPN: nodes 0..3 are the inputs x, y, d (distance from the centre) and a bias of 1; then the
/// outputs (one per channel, sigmoid); then hidden nodes. Connections are keyed by (from, to), which
/// also aligns them for crossover. The graph stays acyclic: a connection always goes from a node
/// earlier in <see cref="_order"/> to a later one.
/// </summary>
internal sealed class CppnGenome : IGenome
{
    internal enum Fn { Sine, Sigmoid, Gaussian, Linear }

    const int Inputs = 4;
    readonly int _outputs;
    readonly List<Fn> _fn;                                        // activation per node (inputs unused)
    readonly List<int> _order;                                    // topological order of non-input nodes
    readonly Dictionary<(int From, int To), double> _links;

    CppnGenome(int outputs, List<Fn> fn, List<int> order, Dictionary<(int, int), double> links)
    {
        _outputs = outputs; _fn = fn; _order = order; _links = links;
    }

    public static CppnGenome Random(int outputs, Random rng)
    {
        var fn = Enumerable.Repeat(Fn.Linear, Inputs).ToList();
        var order = new List<int>();
        var links = new Dictionary<(int, int), double>();
        for (int o = 0; o < outputs; o++)
        {
            fn.Add(Fn.Sigmoid);
            order.Add(Inputs + o);
        }
        var g = new CppnGenome(outputs, fn, order, links);
        // A few hidden nodes, each fed by the inputs and feeding the outputs.
        for (int k = 0; k < 2 + rng.Next(3); k++)
        {
            int id = g._fn.Count;
            g._fn.Add((Fn)rng.Next(4));
            g._order.Insert(0, id);
            for (int i = 0; i < Inputs; i++) if (rng.NextDouble() < 0.7) links[(i, id)] = Gauss(rng) * 2;
            for (int o = 0; o < outputs; o++) links[(id, Inputs + o)] = Gauss(rng) * 2;
        }
        return g;
    }

    static double Gauss(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    public void Render(int h, int w, Span<float> target)
    {
        int n = h * w;
        var values = new float[_fn.Count][];
        var x = values[0] = new float[n];
        var y = values[1] = new float[n];
        var d = values[2] = new float[n];
        var b = values[3] = new float[n];
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++)
            {
                int i = r * w + c;
                x[i] = (float)(2.0 * c / Math.Max(1, w - 1) - 1);
                y[i] = (float)(2.0 * r / Math.Max(1, h - 1) - 1);
                d[i] = MathF.Sqrt(x[i] * x[i] + y[i] * y[i]);
                b[i] = 1;
            }
        var incoming = _links.GroupBy(l => l.Key.To).ToDictionary(g => g.Key, g => g.Select(l => (l.Key.From, (float)l.Value)).ToList());
        foreach (int node in _order)
        {
            var sum = new float[n];
            if (incoming.TryGetValue(node, out var ins))
                foreach (var (from, weight) in ins)
                {
                    var v = values[from];
                    if (v is null) continue;
                    for (int i = 0; i < n; i++) sum[i] += weight * v[i];
                }
            var fn = _fn[node];
            for (int i = 0; i < n; i++)
            {
                float s = sum[i];
                sum[i] = fn switch
                {
                    Fn.Sine => MathF.Sin(s),
                    Fn.Sigmoid => 1 / (1 + MathF.Exp(-s)),
                    Fn.Gaussian => MathF.Exp(-s * s / 2),
                    _ => Math.Clamp(s, -4, 4),
                };
            }
            values[node] = sum;
        }
        for (int o = 0; o < _outputs; o++) values[Inputs + o].AsSpan().CopyTo(target.Slice(o * n, n));
    }

    public void Mutate(Random rng, double rate)
    {
        // Weights: each moves with probability 0.8 (small gaussian steps), occasionally resets.
        foreach (var key in _links.Keys.ToList())
            if (rng.NextDouble() < 0.8)
                _links[key] = rng.NextDouble() < 0.1 ? Gauss(rng) * 2 : Math.Clamp(_links[key] + Gauss(rng) * 0.5, -8, 8);
        // Structure.
        if (rng.NextDouble() < 0.15 && _links.Count > 0)
        {
            // Split a connection with a new node.
            var key = _links.Keys.ElementAt(rng.Next(_links.Count));
            double wgt = _links[key];
            _links.Remove(key);
            int id = _fn.Count;
            _fn.Add((Fn)rng.Next(4));
            int at = key.From < Inputs ? 0 : _order.IndexOf(key.From) + 1;
            _order.Insert(at, id);
            _links[(key.From, id)] = 1;
            _links[(id, key.To)] = wgt;
        }
        if (rng.NextDouble() < 0.25)
        {
            // A new connection from an input or an earlier node to a later one.
            int toIndex = rng.Next(_order.Count);
            int to = _order[toIndex];
            int fromChoices = Inputs + toIndex;
            int pick = rng.Next(fromChoices);
            int from = pick < Inputs ? pick : _order[pick - Inputs];
            if (from != to && !_links.ContainsKey((from, to))) _links[(from, to)] = Gauss(rng) * 2;
        }
        if (rng.NextDouble() < 0.1)
        {
            // Change a hidden node's activation.
            var hidden = _order.Where(n => n >= Inputs + _outputs).ToList();
            if (hidden.Count > 0) _fn[hidden[rng.Next(hidden.Count)]] = (Fn)rng.Next(4);
        }
    }

    public IGenome Clone() => new CppnGenome(_outputs, [.. _fn], [.. _order], new Dictionary<(int, int), double>(_links));

    /// <summary>The child has this parent's nodes and order; links both parents share take either weight at random.</summary>
    public IGenome Crossover(IGenome other, Random rng)
    {
        var o = (CppnGenome)other;
        var child = (CppnGenome)Clone();
        foreach (var key in child._links.Keys.ToList())
            if (o._links.TryGetValue(key, out var w) && rng.Next(2) == 0) child._links[key] = w;
        return child;
    }

    /// <summary>Hidden nodes and links (for the run log).</summary>
    public (int Nodes, int Links) Size => (_fn.Count - Inputs - _outputs, _links.Count);
}
