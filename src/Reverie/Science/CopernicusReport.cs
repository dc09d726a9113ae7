using Reverie.Imaging;
using static TorchSharp.torch;

namespace Reverie.Science;

/// <summary>The analysis of a trained <see cref="SciNet"/>: latent fits, prediction errors, plots and a JSON report.</summary>
internal sealed record CopernicusReport(IReadOnlyList<NeuronReport> Neurons, double MaeSun, double MaeMars)
{
    /// <summary>The trained encoder as a function of observed angles (latent means).</summary>
    public static double[][] Encoder(SciNet net, double[] thetaSun, double[] thetaMars)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = tensor(thetaSun.SelectMany((s, i) => CopernicusData.Encode(s, thetaMars[i])).ToArray()).reshape(-1, 4);
        var z = net.forward(x).to(ScalarType.Float64).data<double>().ToArray();
        return Enumerable.Range(0, SciNet.Latents).Select(j => Enumerable.Range(0, thetaSun.Length).Select(i => z[i * SciNet.Latents + j]).ToArray()).ToArray();
    }

    /// <summary>Analyses the trainer's network: each latent neuron's fits, and the held-out errors; with the latents sampled over (φE, φM) for <see cref="LatentMaps"/>.</summary>
    public static (CopernicusReport Report, IReadOnlyList<float[,]> Maps) Analyze(CopernicusTrainer trainer)
    {
        var (neurons, maps) = LatentAnalysis.Analyze((s, m) => Encoder(trainer.Net, s, m));
        var (_, maeSun, maeMars) = trainer.Evaluate();
        return (new CopernicusReport(neurons, maeSun, maeMars), maps);
    }

    /// <summary>Draws each latent over (φE, φM) next to its heliocentric fit (the published figure).</summary>
    public static byte[] LatentMaps(IReadOnlyList<NeuronReport> neurons, IReadOnlyList<float[,]> maps)
    {
        var panels = new List<IPanel>();
        var x = (0.0, 2 * Math.PI);
        foreach (var r in neurons)
        {
            var latent = maps[r.Neuron];
            var fit = r.Heliocentric.Fitted;
            var values = latent.Cast<float>().Concat(fit.Cast<float>()).Where(float.IsFinite).ToList();
            var range = (values.Min(), values.Max());
            var h = r.Heliocentric;
            panels.Add(new Heatmap($"latent r{r.Neuron + 1}", "φE (Earth, heliocentric, rad)", "φM (Mars, rad)", latent, x, x) { ColorRange = range });
            panels.Add(new Heatmap($"fit {h.W1:0.##}·φE {(h.W2 < 0 ? "−" : "+")} {Math.Abs(h.W2):0.##}·φM, R² = {h.R2:0.000}",
                "φE (unwrapped per region, rad)", "φM (rad)", fit, x, x) { ColorRange = range });
        }
        return Plot.Render(panels, 2, title: "Latent neurons over the heliocentric angles, next to their linear fits");
    }

    /// <summary>Observed against predicted angles over four years, re-encoded every 50 weeks.</summary>
    public static byte[] Predictions(SciNet net, int seed)
    {
        // Four years of weekly observations, predicted in windows of 50 steps: each window
        // encodes its first observation and steps the latent state forward.
        const int window = 50, windows = 4;
        var series = CopernicusData.Generate(1, window * windows, seed + 2_000_003);
        var predicted = new double[2][];
        predicted[0] = new double[series.Length]; predicted[1] = new double[series.Length];
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            for (int w = 0; w < windows; w++)
            {
                var first = tensor(CopernicusData.Encode(series.ThetaSun[w * window], series.ThetaMars[w * window])).reshape(1, 4);
                var p = net.Predict(first, window).reshape(-1, 4).data<float>().ToArray();
                for (int t = 0; t < window; t++)
                {
                    predicted[0][w * window + t] = Math.Atan2(p[4 * t + 1], p[4 * t]);
                    predicted[1][w * window + t] = Math.Atan2(p[4 * t + 3], p[4 * t + 2]);
                }
            }
        }
        var years = Enumerable.Range(0, series.Length).Select(t => t * Orbits.StepDays / 365.25).ToList();
        IPanel Panel(string name, double[] truth, double[] pred) => new LineChart(
            $"{name}: observed and predicted", "time (years; re-encoded every 50 weeks)", $"{name} (rad)",
            [new Series("observed", years, Gaps(truth), Plot.Palette[0]), new Series("predicted", years, Gaps(pred), Plot.Palette[1], Points: true)])
            { YRange = (-Math.PI, Math.PI) };
        return Plot.Render([Panel("θS, the Sun", series.ThetaSun, predicted[0]), Panel("θM, Mars", series.ThetaMars, predicted[1])], 1, 900, 330);
    }

    /// <summary>Breaks a line where an angle wraps (NaN between the two sides).</summary>
    static List<double> Gaps(double[] a) =>
        a.Select((v, i) => i > 0 && Math.Abs(v - a[i - 1]) > Math.PI ? double.NaN : v).ToList();

    /// <summary>The training curves: losses and held-out angle errors per epoch.</summary>
    public static byte[] Training(CopernicusTrainer trainer)
    {
        var h = trainer.History;
        var epochs = h.Select(e => (double)e.Epoch).ToList();
        return Plot.Render([
            new LineChart("reconstruction loss", "epoch", "mean squared error", [
                new Series("training", epochs, h.Select(e => e.TrainLoss).ToList(), Plot.Palette[0]),
                new Series("held-out", epochs, h.Select(e => e.HeldOutLoss).ToList(), Plot.Palette[1])]) { LogY = true },
            new LineChart("held-out angle error over 50 weeks", "epoch", "mean absolute error (rad)", [
                new Series("θS", epochs, h.Select(e => e.MaeSun).ToList(), Plot.Palette[2]),
                new Series("θM", epochs, h.Select(e => e.MaeMars).ToList(), Plot.Palette[3])]) { LogY = true },
        ], 2);
    }

    /// <summary>The numbers the run's recipe holds as its results.</summary>
    public CopernicusResults Results(CopernicusTrainer trainer)
    {
        static CopernicusFit Fit(LinearFit f) => new(f.R2, f.W1, f.W2, f.C, f.Regions, f.Excluded);
        var step = trainer.Net.Step.to(ScalarType.Float64).data<double>().ToArray();
        return new CopernicusResults(
            new CopernicusErrors(MaeSun, MaeMars, trainer.HeldOut.Length, trainer.History.Count > 0 ? trainer.History[^1].HeldOutLoss : null),
            step,
            Neurons.Select(n => new CopernicusNeuron(n.Neuron + 1, Fit(n.Heliocentric),
                // If the neuron is w1·φE + w2·φM, its step per week must be w1·ΔφE + w2·ΔφM.
                n.Heliocentric.W1 * Orbits.EarthStep + n.Heliocentric.W2 * Orbits.MarsStep, step[n.Neuron], Fit(n.Geocentric))).ToList(),
            trainer.History,
            new CopernicusErrors(trainer.Initial.MaeSun, trainer.Initial.MaeMars, trainer.HeldOut.Length, trainer.Initial.HeldOutLoss),
            new CopernicusOrbits(Orbits.EarthPeriod, Orbits.MarsPeriod, Orbits.MarsRadius, Orbits.StepDays),
            "each angle as (cos, sin), in and out; the loss is the squared error of those",
            $"least squares z = w1*a1 + w2*a2 + c over a {LatentAnalysis.Side}x{LatentAnalysis.Side} grid of the two angles, on the regions the encoder covers without a jump (split where neighbours differ by more than a fifth of the latent's range; angles unwrapped within a region; each region may sit a turn higher or lower; regions under 0.5% of the grid left out)");
    }
}

/// <summary>
/// What the Copernicus experiment measured, as its recipe (<c>DIR/scinet.recipe.json</c>) holds it: the held-out
/// errors after training and before, the latent state's learned step per week, each latent neuron's fits, the
/// training history, the orbits' constants, and how angles were encoded and fitted.
/// </summary>
internal sealed record CopernicusResults(CopernicusErrors HeldOutMaeRad, IReadOnlyList<double> LatentStep, IReadOnlyList<CopernicusNeuron> Neurons,
    IReadOnlyList<EpochStats> History, CopernicusErrors Initial, CopernicusOrbits Orbits, string AngleEncoding, string FitMethod);

/// <summary>Mean absolute errors (radians) of the predicted angles over held-out series of <paramref name="Steps"/> weeks, and the reconstruction loss when measured.</summary>
internal sealed record CopernicusErrors(double ThetaSun, double ThetaMars, int Steps, double? Loss = null);

/// <summary>A latent neuron z ≈ W1·a1 + W2·a2 + Constant: a1, a2 are (φE, φM) for the heliocentric fit, (θS, θM) for the geocentric one.</summary>
internal sealed record CopernicusFit(double R2, double W1, double W2, double Constant, int Regions, double ExcludedFraction);

/// <summary>One latent neuron (numbered from 1): its fits, and its step per week as learned and as its heliocentric fit predicts.</summary>
internal sealed record CopernicusNeuron(int Neuron, CopernicusFit Heliocentric, double StepFromFit, double StepLearned, CopernicusFit Geocentric);

/// <summary>The orbits the observations were simulated from.</summary>
internal sealed record CopernicusOrbits(double EarthPeriodDays, double MarsPeriodDays, double MarsRadiusAu, double StepDays);
