using System.Text.Json;
using System.Text.Json.Nodes;
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

    /// <summary>Analyses the trainer's network and writes latents.png, prediction.png, training.png, the weights (scinet.dat, TorchSharp's format) and report.json into <paramref name="dir"/>.</summary>
    public static CopernicusReport Write(CopernicusTrainer trainer, string dir)
    {
        Directory.CreateDirectory(dir);
        var net = trainer.Net;
        var (neurons, maps) = LatentAnalysis.Analyze((s, m) => Encoder(net, s, m));
        var (_, maeSun, maeMars) = trainer.Evaluate();
        var report = new CopernicusReport(neurons, maeSun, maeMars);
        LatentMaps(neurons, maps, Path.Combine(dir, "latents.png"));
        Predictions(net, trainer.Options.Seed, Path.Combine(dir, "prediction.png"));
        Training(trainer, Path.Combine(dir, "training.png"));
        var weights = new MemoryStream();
        net.save(weights); // closes the stream; ToArray still works
        AtomicFile.WriteAllBytes(Path.Combine(dir, "scinet.dat"), weights.ToArray());
        AtomicFile.WriteAllText(Path.Combine(dir, "report.json"), report.Json(trainer).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return report;
    }

    /// <summary>Draws each latent over (φE, φM) next to its heliocentric fit (the published figure).</summary>
    public static void LatentMaps(IReadOnlyList<NeuronReport> neurons, IReadOnlyList<float[,]> maps, string path)
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
        Plot.Save(path, panels, 2, title: "Latent neurons over the heliocentric angles, next to their linear fits");
    }

    static void Predictions(SciNet net, int seed, string path)
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
        Plot.Save(path, [Panel("θS, the Sun", series.ThetaSun, predicted[0]), Panel("θM, Mars", series.ThetaMars, predicted[1])], 1, 900, 330);
    }

    /// <summary>Breaks a line where an angle wraps (NaN between the two sides).</summary>
    static List<double> Gaps(double[] a) =>
        a.Select((v, i) => i > 0 && Math.Abs(v - a[i - 1]) > Math.PI ? double.NaN : v).ToList();

    static void Training(CopernicusTrainer trainer, string path)
    {
        var h = trainer.History;
        var epochs = h.Select(e => (double)e.Epoch).ToList();
        Plot.Save(path, [
            new LineChart("reconstruction loss", "epoch", "mean squared error", [
                new Series("training", epochs, h.Select(e => e.TrainLoss).ToList(), Plot.Palette[0]),
                new Series("held-out", epochs, h.Select(e => e.HeldOutLoss).ToList(), Plot.Palette[1])]) { LogY = true },
            new LineChart("held-out angle error over 50 weeks", "epoch", "mean absolute error (rad)", [
                new Series("θS", epochs, h.Select(e => e.MaeSun).ToList(), Plot.Palette[2]),
                new Series("θM", epochs, h.Select(e => e.MaeMars).ToList(), Plot.Palette[3])]) { LogY = true },
        ], 2);
    }

    /// <summary>The report's JSON: the recipe, the training history, the errors and the fits.</summary>
    public JsonObject Json(CopernicusTrainer trainer)
    {
        var o = trainer.Options;
        JsonObject Fit(LinearFit f, string a1, string a2) => new()
        {
            ["r2"] = f.R2, ["weights"] = new JsonObject { [a1] = f.W1, [a2] = f.W2, ["constant"] = f.C },
            ["regions"] = f.Regions, ["excludedFraction"] = f.Excluded,
        };
        var step = trainer.Net.Step.to(ScalarType.Float64).data<double>().ToArray();
        return new JsonObject
        {
            ["experiment"] = "copernicus",
            ["recipe"] = new JsonObject
            {
                ["samples"] = o.Samples, ["epochs"] = o.Epochs, ["seriesLength"] = o.SeriesLength, ["seed"] = o.Seed, ["batch"] = o.Batch,
                ["lr"] = o.LearningRate, ["beta"] = o.Beta, ["heldOut"] = o.HeldOut,
                ["angleEncoding"] = "each angle as (cos, sin), in and out; the loss is the squared error of those",
                ["orbits"] = new JsonObject { ["earthPeriodDays"] = Orbits.EarthPeriod, ["marsPeriodDays"] = Orbits.MarsPeriod, ["marsRadiusAU"] = Orbits.MarsRadius, ["stepDays"] = Orbits.StepDays },
            },
            ["heldOutMaeRad"] = new JsonObject { ["thetaSun"] = MaeSun, ["thetaMars"] = MaeMars, ["steps"] = trainer.HeldOut.Length },
            ["latentStep"] = new JsonArray(step.Select(v => (JsonNode)v).ToArray()),
            ["fitMethod"] = $"least squares z = w1*a1 + w2*a2 + c over a {LatentAnalysis.Side}x{LatentAnalysis.Side} grid of the two angles, on the regions the encoder covers without a jump (split where neighbours differ by more than a fifth of the latent's range; angles unwrapped within a region; each region may sit a turn higher or lower; regions under 0.5% of the grid left out)",
            ["neurons"] = new JsonArray(Neurons.Select(n => (JsonNode)new JsonObject
            {
                ["neuron"] = n.Neuron + 1,
                ["heliocentric"] = Fit(n.Heliocentric, "phiEarth", "phiMars"),
                // If the neuron is w1·φE + w2·φM, its step per week must be w1·ΔφE + w2·ΔφM.
                ["stepFromFit"] = n.Heliocentric.W1 * Orbits.EarthStep + n.Heliocentric.W2 * Orbits.MarsStep,
                ["stepLearned"] = step[n.Neuron],
                ["geocentric"] = Fit(n.Geocentric, "thetaSun", "thetaMars"),
            }).ToArray()),
            ["history"] = new JsonArray(trainer.History.Select(e => (JsonNode)new JsonObject
            {
                ["epoch"] = e.Epoch, ["trainLoss"] = e.TrainLoss, ["trainKl"] = e.TrainKl, ["heldOutLoss"] = e.HeldOutLoss,
                ["maeSun"] = e.MaeSun, ["maeMars"] = e.MaeMars, ["seconds"] = e.Seconds,
            }).ToArray()),
            ["initial"] = new JsonObject { ["heldOutLoss"] = trainer.Initial.HeldOutLoss, ["maeSun"] = trainer.Initial.MaeSun, ["maeMars"] = trainer.Initial.MaeMars },
        };
    }
}
