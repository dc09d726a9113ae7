using System.Diagnostics;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>How to train a <see cref="ConvNet"/>.</summary>
internal sealed record TrainOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Examples per step.</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>Adam's peak learning rate (cosine decay to zero over the run).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Decoupled weight decay (AdamW) of conv and dense weights.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Seed of the shuffles, augmentations and dropout.</summary>
    public int Seed { get; init; }
    /// <summary>Random horizontal flips.</summary>
    public bool Flip { get; init; }
    /// <summary>Largest random shift in pixels (zero padding, then a crop).</summary>
    public int Shift { get; init; }
    /// <summary>Largest standard deviation of the Gaussian pixel noise added to training images (each image draws its own σ from 0 to this; 0: none).</summary>
    public double Noise { get; init; }
    /// <summary>The first trainable layer; the layers before it are frozen (weights and batch-norm statistics). Null trains all.</summary>
    public string? TrainableFrom { get; init; }
    /// <summary>Adversarial training: each batch is replaced by adversarial examples of the network as it is (none: clean training).</summary>
    public AdversarialTraining Adversarial { get; init; }
    /// <summary>The L∞ budget of adversarial training, in 0..1 pixel units.</summary>
    public double AdversarialEps { get; init; } = 0.1;
    /// <summary>PGD's steps in adversarial training (step size 2.5·eps/steps, from a random start).</summary>
    public int AdversarialSteps { get; init; } = 7;

    /// <summary>Checks the values.</summary>
    public void Validate()
    {
        if (Epochs is < 1 or > 100_000) throw new BadInputException($"--epochs must be from 1 to 100000; got {Epochs}.");
        if (BatchSize is < 1 or > 65536) throw new BadInputException($"--batch must be from 1 to 65536; got {BatchSize}.");
        if (!(LearningRate > 0 && LearningRate < 10)) throw new BadInputException($"--lr must be a positive number below 10; got {LearningRate}.");
        if (WeightDecay is < 0 or > 1) throw new BadInputException($"The weight decay must be from 0 to 1; got {WeightDecay}.");
        if (Shift is < 0 or > 64) throw new BadInputException($"The shift must be from 0 to 64 pixels; got {Shift}.");
        if (Noise is < 0 or > 1) throw new BadInputException($"--noise must be from 0 to 1; got {Noise}.");
        if (Adversarial != AdversarialTraining.None)
        {
            if (!(AdversarialEps > 0) || AdversarialEps > 1) throw new BadInputException($"--eps must be above 0 and at most 1; got {AdversarialEps}.");
            if (AdversarialSteps is < 1 or > 100) throw new BadInputException($"--adversarial-steps must be from 1 to 100; got {AdversarialSteps}.");
        }
    }
}

/// <summary>How training makes its adversarial examples.</summary>
internal enum AdversarialTraining
{
    /// <summary>Clean training.</summary>
    None,
    /// <summary>Madry et al. (2018): PGD in the L∞ ball from a random start, <see cref="TrainOptions.AdversarialSteps"/> steps of 2.5·eps/steps.</summary>
    Pgd,
    /// <summary>Wong, Rice and Kolter (2020), "fast is better than free": one signed step of 1.25·eps from a uniformly random start, projected to the ball.</summary>
    FgsmRs,
}

/// <summary>What one epoch achieved.</summary>
internal sealed record EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double LearningRate, double Seconds);

/// <summary>Where training is.</summary>
internal sealed record TrainProgress(int Epoch, int Epochs, int Step, int Steps, double Loss, double Accuracy);

/// <summary>The state training can resume from: weights, Adam's moments and the epochs done.</summary>
internal sealed class TrainState : IDisposable
{
    /// <summary>Epochs completed.</summary>
    public int EpochsDone { get; init; }
    /// <summary>Adam's step count.</summary>
    public long Steps { get; init; }
    /// <summary>Metrics so far.</summary>
    public List<EpochMetrics> History { get; init; } = new();
    /// <summary>Adam's first moments by parameter name.</summary>
    public Dictionary<string, Tensor> M { get; init; } = new();
    /// <summary>Adam's second moments by parameter name.</summary>
    public Dictionary<string, Tensor> V { get; init; } = new();
    /// <summary>The best epoch's weights so far (state_dict), or null.</summary>
    public Dictionary<string, Tensor>? Best { get; set; }
    /// <summary>The best validation accuracy so far.</summary>
    public double BestAccuracy { get; set; } = -1;
    /// <summary>The epoch that gave <see cref="Best"/>.</summary>
    public int BestEpoch { get; set; }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in M.Values.Concat(V.Values).Concat(Best?.Values ?? Enumerable.Empty<Tensor>())) t.Dispose();
    }
}

/// <summary>Accuracy, loss and the confusion matrix of a network on a labelled data set.</summary>
internal sealed record Evaluation(IReadOnlyList<string> Classes, long[,] Confusion, double Loss)
{
    /// <summary>Examples counted.</summary>
    public long Total => Confusion.Cast<long>().Sum();
    /// <summary>Fraction classified correctly.</summary>
    public double Accuracy => Total == 0 ? 0 : Enumerable.Range(0, Classes.Count).Sum(i => Confusion[i, i]) / (double)Total;
    /// <summary>Accuracy of each true class (recall).</summary>
    public double[] PerClass => Enumerable.Range(0, Classes.Count).Select(i =>
    {
        long n = Enumerable.Range(0, Classes.Count).Sum(j => Confusion[i, j]);
        return n == 0 ? double.NaN : Confusion[i, i] / (double)n;
    }).ToArray();
}

/// <summary>
/// Supervised training of a <see cref="ConvNet"/>: seeded shuffles and augmentation, AdamW with a
/// cosine schedule, validation after each epoch, and the best epoch's weights kept. Deterministic for
/// a given seed and thread count; resumable from a <see cref="TrainState"/>.
/// </summary>
internal sealed class Trainer(ConvNet net, TrainOptions options)
{
    /// <summary>Called after every epoch with the state to save (for --resume).</summary>
    public Action<TrainState>? EpochDone { get; init; }

    /// <summary>Trains; returns the state after the last epoch, whose <see cref="TrainState.Best"/> holds the best weights.</summary>
    public TrainState Run(IImageDataset train, IImageDataset? validation, TrainState? resume = null, IProgress<TrainProgress>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        Check(train);
        if (validation is not null) Check(validation);
        _ = net.Layers; // probe shapes before switching to training mode
        var layerNames = net.NamedLayers.Select(l => l.Name).ToList();
        int firstTrainable = 0;
        if (options.TrainableFrom is { } from)
        {
            string resolved = net.ResolveLayer(from);
            firstTrainable = layerNames.IndexOf(resolved);
            if (firstTrainable < 0) throw new BadInputException($"'{from}' is not a layer with weights; choose one of {string.Join(", ", layerNames)}.");
        }
        var trainable = new List<(string Name, Tensor P)>();
        foreach (var (name, p) in net.named_parameters())
        {
            int layer = layerNames.IndexOf(name.Split('.')[0]);
            bool on = layer >= firstTrainable;
            p.requires_grad_(on);
            if (on) trainable.Add((name, p));
        }
        if (trainable.Count == 0) throw new BadInputException("Nothing is left to train: every layer is frozen.");

        var state = resume ?? new TrainState();
        foreach (var (name, p) in trainable)
        {
            if (!state.M.ContainsKey(name)) state.M[name] = zeros_like(p).detach();
            if (!state.V.ContainsKey(name)) state.V[name] = zeros_like(p).detach();
        }
        long step = state.Steps;
        int stepsPerEpoch = (train.Count + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs;
        try
        {
            for (int epoch = state.EpochsDone; epoch < options.Epochs; epoch++)
            {
                cancel.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                var rng = new Random(Datasets.Seed(options.Seed, epoch, 0x7a1));
                net.SeedDropout(options.Seed * 1000L + epoch); // the network's own generators, not torch's global one
                var order = Datasets.Shuffled(train.Count, rng);
                SetMode(firstTrainable);
                double lossSum = 0; long correct = 0, seen = 0;
                double lr = 0;
                for (int b = 0; b < stepsPerEpoch; b++)
                {
                    cancel.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars (batch norm, a + b) stay alive
                    var idx = order.AsSpan(b * options.BatchSize, Math.Min(options.BatchSize, train.Count - b * options.BatchSize)).ToArray();
                    var x = Augment(Datasets.FitTo(train.Images(idx), net.Input), rng);
                    var y = tensor(idx.Select(train.Label).Select(l => (long)l).ToArray());
                    if (options.Adversarial != AdversarialTraining.None) x = Adversarial(x, y, rng);
                    var logits = net.forward(x);
                    var loss = nn.functional.cross_entropy(logits, y);
                    foreach (var (_, p) in trainable) p.grad?.zero_();
                    loss.backward();
                    lr = options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / Math.Max(1, totalSteps)));
                    step++;
                    AdamW(trainable, state, step, lr, options.WeightDecay);
                    double l = loss.item<float>();
                    long c = logits.argmax(1).eq(y).sum().item<long>();
                    lossSum += l * idx.Length; correct += c; seen += idx.Length;
                    progress?.Report(new TrainProgress(epoch + 1, options.Epochs, b + 1, stepsPerEpoch, lossSum / seen, correct / (double)seen));
                }
                net.eval();
                var val = validation is null ? null : Evaluate(net, validation, options.BatchSize * 2, cancel: cancel);
                var m = new EpochMetrics(epoch + 1, lossSum / seen, correct / (double)seen, val?.Loss ?? double.NaN, val?.Accuracy ?? double.NaN, lr, sw.Elapsed.TotalSeconds);
                state.History.Add(m);
                double score = val?.Accuracy ?? m.TrainAccuracy;
                if (score > state.BestAccuracy || state.Best is null)
                {
                    if (state.Best is not null) foreach (var t in state.Best.Values) t.Dispose();
                    state.Best = StateDict(net);
                    state.BestAccuracy = score;
                    state.BestEpoch = epoch + 1;
                }
                var snapshot = new TrainState { EpochsDone = epoch + 1, Steps = step, History = state.History, M = state.M, V = state.V, Best = state.Best, BestAccuracy = state.BestAccuracy, BestEpoch = state.BestEpoch };
                EpochDone?.Invoke(snapshot);
                state = snapshot;
            }
        }
        finally
        {
            net.eval();
            foreach (var (_, p) in net.named_parameters()) p.requires_grad_(false);
        }
        return state;
    }

    void Check(IImageDataset data)
    {
        if (data.Count == 0) throw new BadInputException($"'{data.Name}' has no examples.");
        if (data.Classes.Count != net.Spec.Classes)
            throw new BadInputException($"'{data.Name}' has {data.Classes.Count} classes but the network has {net.Spec.Classes} outputs.");
    }

    /// <summary>Training mode for the trainable layers; the frozen ones stay in evaluation mode (fixed batch-norm statistics, no dropout).</summary>
    void SetMode(int firstTrainable)
    {
        net.train();
        net.FreezeModesBefore(firstTrainable);
    }

    Tensor Augment(Tensor x, Random rng)
    {
        if (options.Noise > 0)
        {
            // Each image gets its own σ in [0, Noise], drawn per channel; a gray network mixes the three channels
            // (0.299 R + 0.587 G + 0.114 B), which lowers the noise it sees to about 0.67 σ.
            var sigma = tensor(Enumerable.Range(0, (int)x.shape[0]).Select(_ => (float)(rng.NextDouble() * options.Noise)).ToArray()).reshape(-1, 1, 1, 1);
            var g = new Generator((ulong)rng.NextInt64());
            x = (x + randn(x.shape, generator: g) * sigma).clamp(S(0), S(1));
        }
        if (!options.Flip && options.Shift == 0) return x;
        int n = (int)x.shape[0], s = options.Shift;
        var flips = new bool[n];
        var shifts = new (int Dy, int Dx)[n];
        for (int i = 0; i < n; i++)
        {
            flips[i] = options.Flip && rng.Next(2) == 1;
            shifts[i] = (s == 0 ? 0 : rng.Next(-s, s + 1), s == 0 ? 0 : rng.Next(-s, s + 1));
        }
        var padded = s > 0 ? nn.functional.pad(x, [s, s, s, s]) : x;
        long h = x.shape[2], w = x.shape[3];
        var parts = new Tensor[n];
        for (int i = 0; i < n; i++)
        {
            var one = padded[i..(i + 1), .., (s + shifts[i].Dy)..(s + shifts[i].Dy + (int)h), (s + shifts[i].Dx)..(s + shifts[i].Dx + (int)w)];
            parts[i] = flips[i] ? one.flip(3) : one;
        }
        return cat(parts, 0);
    }

    /// <summary>
    /// The batch's adversarial examples against the network as it is, in training mode (batch statistics, dropout), as
    /// both papers make them; the gradient is taken with respect to the change only, so no weight gradient piles up.
    /// </summary>
    Tensor Adversarial(Tensor x, Tensor y, Random rng)
    {
        double eps = options.AdversarialEps;
        bool fgsm = options.Adversarial == AdversarialTraining.FgsmRs;
        int steps = fgsm ? 1 : options.AdversarialSteps;
        double alpha = fgsm ? 1.25 * eps : 2.5 * eps / steps;
        var g = new Generator((ulong)rng.NextInt64());
        // A gray image seen as three equal channels keeps one change for all three (as the attacks do).
        bool gray = Reverie.Adversarial.Attack.IsGray(x);
        var shape = gray ? new[] { x.shape[0], 1, x.shape[2], x.shape[3] } : x.shape;
        var delta = (rand(shape, generator: g) * S(2 * eps) - S(eps)).expand(x.shape);
        delta = ((x + delta).clamp(S(0), S(1)) - x).detach();
        for (int k = 0; k < steps; k++)
        {
            var d = delta.clone().requires_grad_(true);
            var loss = nn.functional.cross_entropy(net.forward(x + d), y);
            var grad = autograd.grad([loss], [d])[0];
            using var noGrad = no_grad();
            var step = gray ? grad.sum([1], keepdim: true).sign().expand(x.shape) : grad.sign();
            delta = ((x + (delta + step * S(alpha)).clamp(S(-eps), S(eps))).clamp(S(0), S(1)) - x).detach();
        }
        return (x + delta).detach();
    }

    static void AdamW(List<(string Name, Tensor P)> trainable, TrainState state, long step, double lr, double decay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        using var noGrad = no_grad();
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        foreach (var (name, p) in trainable)
        {
            if (p.grad is not { } g) continue;
            var m = state.M[name];
            var v = state.V[name];
            m.mul_(S(beta1)).add_(g, S(1 - beta1));
            v.mul_(S(beta2)).addcmul_(g, g, S(1 - beta2));
            if (p.dim() > 1 && decay > 0) p.mul_(S(1 - lr * decay));
            var denom = (v / S(bc2)).sqrt_().add_(S(eps));
            p.addcdiv_(m, denom, S(-lr / bc1));
        }
    }

    /// <summary>A detached copy of the network's parameters and buffers.</summary>
    public static Dictionary<string, Tensor> StateDict(nn.Module net) =>
        net.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    /// <summary>
    /// Classifies every example of <paramref name="data"/> and counts the results. Classes are matched
    /// by name between the data set and the network's labels (or by position when the network has no labels).
    /// Images are resized to the network's input size.
    /// </summary>
    public static Evaluation Evaluate(INetwork net, IImageDataset data, int batch = 256, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        int k = data.Classes.Count;
        var map = Datasets.ClassMap(net, data);
        var confusion = new long[k, k];
        double lossSum = 0;
        using var noGrad = no_grad();
        for (int start = 0; start < data.Count; start += batch)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batch, data.Count - start)).ToArray();
            var x = Datasets.FitTo(data.Images(idx), net.Input);
            var outs = net.Forward(x.to(net.Device), [net.OutputLayer]);
            var y = outs[net.OutputLayer].flatten(1).to(ScalarType.Float32).cpu();
            var logp = net.OutputIsProbability ? y.clamp_min(S(1e-12)).log() : y.log_softmax(1);
            // Restrict to the data set's classes: the prediction is the most likely of them.
            var cols = logp.index_select(1, tensor(map));
            var target = tensor(idx.Select(i => (long)data.Label(i)).ToArray());
            lossSum += nn.functional.nll_loss(cols.log_softmax(1), target, reduction: nn.Reduction.Sum).item<float>();
            var pred = cols.argmax(1).data<long>().ToArray();
            for (int i = 0; i < idx.Length; i++) confusion[data.Label(idx[i]), pred[i]]++;
            progress?.Report((start + idx.Length, data.Count));
        }
        return new Evaluation(data.Classes, confusion, lossSum / Math.Max(1, data.Count));
    }
}
