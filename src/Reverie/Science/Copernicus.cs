using System.Diagnostics;
using Reverie.Jobs;
using static TorchSharp.torch;

namespace Reverie.Science;

/// <summary>Options of the Copernicus experiment (<see cref="JobOptions.Seed"/> seeds the data, the initial weights, the batches and the latent noise; the model is SciNet, built here).</summary>
internal sealed record CopernicusOptions : JobOptions
{
    /// <summary>Training series.</summary>
    public int Samples { get; init; } = 20000;
    /// <summary>Passes over the training series.</summary>
    public int Epochs { get; init; } = 150;
    /// <summary>Observations per series (weekly).</summary>
    public int SeriesLength { get; init; } = 50;
    /// <summary>Series per batch.</summary>
    public int Batch { get; init; } = 256;
    /// <summary>Adam's learning rate at the start (it decays along a cosine to 1% of this).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Weight of the β-VAE penalty (KL divergence of the latent distribution from N(0, 1)).</summary>
    public double Beta { get; init; } = 1e-3;
    /// <summary>Held-out series for validation and analysis.</summary>
    public int HeldOut { get; init; } = 1000;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Model is not null) throw new BadInputException("The Copernicus experiment trains its own network (SciNet); it takes no model.");
        if (Samples < 16 || Samples > 10_000_000) throw new BadInputException($"--samples must be from 16 to 10000000; got {Samples}.");
        if (Epochs < 1 || Epochs > 100_000) throw new BadInputException($"--epochs must be from 1 to 100000; got {Epochs}.");
        if (SeriesLength < 2 || SeriesLength > 10_000) throw new BadInputException($"--series-length must be from 2 to 10000; got {SeriesLength}.");
        if (Batch < 1) throw new BadInputException($"--batch must be at least 1; got {Batch}.");
        if (!(LearningRate > 0) || LearningRate > 1) throw new BadInputException($"--lr must be above 0 and at most 1; got {LearningRate}.");
        if (HeldOut < 1 || HeldOut > 1_000_000) throw new BadInputException($"The held-out series must number from 1 to 1000000; got {HeldOut}.");
        if (!(Beta >= 0)) throw new BadInputException($"--beta must not be negative; got {Beta}.");
    }
}

/// <summary>One epoch of training: the mean training loss, and on the held-out series the reconstruction loss and the mean angle errors.</summary>
internal sealed record EpochStats(int Epoch, double TrainLoss, double TrainKl, double HeldOutLoss, double MaeSun, double MaeMars, double Seconds);

/// <summary>
/// Trains <see cref="SciNet"/> on weekly observations of the Sun and Mars seen from Earth: each
/// series' first observation is encoded, the latent state is stepped forward, and every step is
/// decoded and compared with what was observed.
/// </summary>
internal sealed class CopernicusTrainer
{
    /// <summary>The options.</summary>
    public CopernicusOptions Options { get; }
    /// <summary>The network being trained.</summary>
    public SciNet Net { get; }
    /// <summary>The training series.</summary>
    public CopernicusData Train { get; }
    /// <summary>The held-out series (another seed), always 50 steps long as the issue measures.</summary>
    public CopernicusData HeldOut { get; }
    /// <summary>Per-epoch statistics so far.</summary>
    public List<EpochStats> History { get; } = new();
    /// <summary>Held-out statistics before training.</summary>
    public EpochStats Initial { get; }

    readonly Tensor trainX, heldX;

    /// <summary>Generates the data and initializes the network, deterministically from the seed.</summary>
    public CopernicusTrainer(CopernicusOptions options)
    {
        options.Validate();
        Options = options;
        Train = CopernicusData.Generate(options.Samples, options.SeriesLength, options.Seed);
        HeldOut = CopernicusData.Generate(options.HeldOut, 50, options.Seed + 1_000_003);
        trainX = tensor(Train.Encoded()).reshape(Train.Count, Train.Length, 4);
        heldX = tensor(HeldOut.Encoded()).reshape(HeldOut.Count, HeldOut.Length, 4);
        Net = new SciNet();
        Optimization.Init.Reset(Net, options.Seed);
        var (loss, sun, mars) = Evaluate();
        Initial = new EpochStats(0, double.NaN, double.NaN, loss, sun, mars, 0);
    }

    /// <summary>Held-out reconstruction loss, and mean absolute errors (radians) of θS and θM over all steps.</summary>
    public (double Loss, double MaeSun, double MaeMars) Evaluate()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var pred = Net.Predict(heldX.select(1, 0), HeldOut.Length);
        double loss = (pred - heldX).pow(S(2)).sum(-1).mean().item<float>();
        var p = pred.reshape(-1, 4).data<float>().ToArray();
        double sun = 0, mars = 0;
        for (int k = 0; k < HeldOut.Count * HeldOut.Length; k++)
        {
            sun += Orbits.AngleError(Math.Atan2(p[4 * k + 1], p[4 * k]), HeldOut.ThetaSun[k]);
            mars += Orbits.AngleError(Math.Atan2(p[4 * k + 3], p[4 * k + 2]), HeldOut.ThetaMars[k]);
        }
        int n = HeldOut.Count * HeldOut.Length;
        return (loss, sun / n, mars / n);
    }

    /// <summary>Trains for the configured epochs, reporting each one; stops early (keeping what it has) when cancelled.</summary>
    public void Run(IProgress<(int Epoch, int Batch, int Batches, double Loss)>? progress = null, Action<EpochStats>? epochDone = null, CancellationToken cancel = default)
    {
        var o = Options;
        TorchRuntime.FlushDenormals();
        var rng = new Random(o.Seed);
        var noise = new Generator((ulong)o.Seed + 17);
        using var adam = optim.Adam(Net.parameters(), o.LearningRate);
        int batches = (Train.Count + o.Batch - 1) / o.Batch, total = batches * o.Epochs, iteration = 0;
        var steps = arange(S(Train.Length));
        var order = Enumerable.Range(0, Train.Count).ToArray();
        for (int epoch = 1; epoch <= o.Epochs && !cancel.IsCancellationRequested; epoch++)
        {
            var sw = Stopwatch.StartNew();
            rng.Shuffle(order);
            double lossSum = 0, klSum = 0;
            int seen = 0;
            for (int b = 0; b < batches && !cancel.IsCancellationRequested; b++, iteration++)
            {
                using var scope = NewDisposeScope();
                // Cosine decay from the initial rate to 1% of it.
                double lr = o.LearningRate * (0.01 + 0.99 * 0.5 * (1 + Math.Cos(Math.PI * iteration / total)));
                foreach (var g in adam.ParamGroups) g.LearningRate = lr;
                var idx = tensor(order.Skip(b * o.Batch).Take(o.Batch).Select(i => (long)i).ToArray());
                using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the step
                var x = trainX.index_select(0, idx);
                // Each series is encoded at a random step t0 and predicted at every step, before
                // and after: r(t) = r(t0) + (t - t0)·b. Encoding anywhere along a series asks the
                // encoder to be consistent with the constant step everywhere.
                long n = idx.shape[0];
                var t0 = tensor(Enumerable.Range(0, (int)n).Select(_ => (long)rng.Next(Train.Length)).ToArray());
                var start = x.gather(1, t0.reshape(n, 1, 1).expand(n, 1, 4)).squeeze(1);
                var (mean, logVar) = Net.Encode(start);
                var z = mean + randn(mean.shape, generator: noise) * (S(0.5) * logVar).exp();
                var offsets = (steps.reshape(1, -1) - t0.reshape(n, 1)).to(ScalarType.Float32); // [n, L]
                var pred = Net.Decode(z.unsqueeze(1) + offsets.unsqueeze(2) * Net.Step.reshape(1, 1, SciNet.Latents));
                var reconstruction = (pred - x).pow(S(2)).sum(-1).mean();
                var kl = (S(0.5) * (mean.pow(S(2)) + logVar.exp() - S(1) - logVar)).sum(-1).mean();
                var loss = reconstruction + S(o.Beta) * kl;
                adam.zero_grad();
                loss.backward();
                adam.step();
                double l = reconstruction.item<float>();
                lossSum += l * idx.shape[0]; klSum += kl.item<float>() * idx.shape[0]; seen += (int)idx.shape[0];
                progress?.Report((epoch, b + 1, batches, l));
            }
            if (seen == 0) break;
            var (heldLoss, sun, mars) = Evaluate();
            var stats = new EpochStats(epoch, lossSum / seen, klSum / seen, heldLoss, sun, mars, sw.Elapsed.TotalSeconds);
            History.Add(stats);
            epochDone?.Invoke(stats);
        }
    }
}
