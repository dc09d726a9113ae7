using Reverie.Jobs;

namespace Reverie.Science;

/// <summary>
/// The Copernicus experiment as a job: trains SciNet on the Sun and Mars seen from Earth, then fits each latent neuron
/// to the heliocentric and the geocentric angles. The main output is the trained network (<c>DIR/scinet.dat</c>,
/// TorchSharp's format) with its recipe beside it (<c>scinet.recipe.json</c>: every option, and as results the fits,
/// the held-out errors and the training history); <c>latents.png</c>, <c>prediction.png</c> and <c>training.png</c> go
/// beside it, each with the recipe in its PNG chunk. Cancelled after an epoch, it saves what it has and marks the
/// recipe interrupted; cancelled during the first, it saves nothing.
/// </summary>
internal sealed class CopernicusJob : Job<CopernicusOptions>
{
    /// <inheritdoc/>
    public override string Kind => "science-copernicus";

    /// <summary>The figures, beside the main output in its folder.</summary>
    internal static readonly string[] Figures = ["latents.png", "prediction.png", "training.png"];

    /// <inheritdoc/>
    protected override Task<JobResult> RunAsync(CopernicusOptions o, JobContext c) => Task.FromResult(Run(o, c));

    static JobResult Run(CopernicusOptions o, JobContext c)
    {
        TorchRuntime.Initialize();
        string dir = Path.GetDirectoryName(Path.GetFullPath(c.Output))!;
        var figures = Figures.Select(f => Path.Combine(dir, f)).ToArray();
        foreach (var f in figures) c.CheckOutput(f, sidecar: false);
        var trainer = new CopernicusTrainer(o);
        int batches = (trainer.Train.Count + o.Batch - 1) / o.Batch;
        long total = (long)batches * o.Epochs;
        trainer.Run(new SyncProgress<(int Epoch, int Batch, int Batches, double Loss)>(s => c.Report(new JobEvent
            {
                Stage = $"epoch {s.Epoch}/{o.Epochs}", Step = (s.Epoch - 1L) * s.Batches + s.Batch, Total = total,
                Terms = new Dictionary<string, double> { ["loss"] = s.Loss },
            })),
            e => c.Report(new JobEvent { Kind = JobEventKind.Log, Message =
                $"epoch {e.Epoch}: train {e.TrainLoss:0.00000} (KL {e.TrainKl:0.00}), held-out {e.HeldOutLoss:0.00000}, MAE θS {e.MaeSun:0.0000} θM {e.MaeMars:0.0000} rad ({e.Seconds:0.0} s)" }),
            c.Cancel);
        int epochs = trainer.History.Count;
        bool interrupted = epochs < o.Epochs;
        if (epochs == 0)
        {
            c.SaveFile([], c.Output, null, 0, interrupted: true); // stopped in the first epoch: marks the run as saving nothing
            return new JobResult([], "interrupted in the first epoch: nothing saved", true);
        }
        c.Report(new JobEvent { Stage = "fitting the latent neurons", Step = total, Total = total });
        var (report, maps) = CopernicusReport.Analyze(trainer);
        var results = report.Results(trainer);
        var weights = new MemoryStream();
        trainer.Net.save(weights); // closes the stream; ToArray still works
        c.SaveFile(weights.ToArray(), c.Output, results, epochs, interrupted);
        c.SaveExtraPng(CopernicusReport.LatentMaps(report.Neurons, maps), figures[0]);
        c.SaveExtraPng(CopernicusReport.Predictions(trainer.Net, o.Seed), figures[1]);
        c.SaveExtraPng(CopernicusReport.Training(trainer), figures[2]);
        string summary = $"{dir}: after {epochs} epochs{(interrupted ? " (interrupted)" : "")}, held-out error over 50 steps θS {report.MaeSun:0.0000} rad, θM {report.MaeMars:0.0000} rad; " +
                         string.Join(", ", report.Neurons.Select(n => $"r{n.Neuron + 1} heliocentric R² {n.Heliocentric.R2:0.000}"));
        return new JobResult([c.Output, .. figures], summary, interrupted, results);
    }
}
