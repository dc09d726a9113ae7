using System.Text.Json;
using Reverie.Science;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Science;

/// <summary>The Copernicus experiment: orbits, the latent analysis on a hand-built encoder, and a short training run.</summary>
public class CopernicusTests(ITestOutputHelper output)
{
    [Fact]
    public void ObservationsFollowTheGeometryAndInvert()
    {
        var rng = new Random(4);
        for (int k = 0; k < 1000; k++)
        {
            double pe = rng.NextDouble() * 2 * Math.PI, pm = rng.NextDouble() * 2 * Math.PI;
            var (ts, tm) = Orbits.Observe(pe, pm);
            // The Sun is seen opposite Earth's heliocentric position.
            Assert.True(Orbits.AngleError(ts, pe + Math.PI) < 1e-12);
            // Mars seen from Earth lies on Mars' orbit, along the line of sight.
            var (e, m) = Orbits.Heliocentric(ts, tm);
            Assert.True(Orbits.AngleError(e, pe) < 1e-9, $"φE {pe} -> {e}");
            Assert.True(Orbits.AngleError(m, pm) < 1e-9, $"φM {pm} -> {m}");
        }
        // Mars at opposition (Earth between Sun and Mars) is seen where the Sun is not.
        var (s0, m0) = Orbits.Observe(0, 0);
        Assert.Equal(Math.PI, Math.Abs(s0), 12);
        Assert.Equal(0, m0, 12);
        var data = CopernicusData.Generate(3, 50, 1);
        Assert.Equal(Orbits.EarthStep, data.PhiEarth[1] - data.PhiEarth[0], 12);
        Assert.Equal(2 * Math.PI * 7 / 686.98, data.PhiMars[50 + 1] - data.PhiMars[50], 12);
    }

    [Fact]
    public void TheAnalysisFindsTheHeliocentricAnglesOfAHandBuiltEncoder()
    {
        var (reports, maps) = LatentAnalysis.Analyze(LatentAnalysis.CopernicanEncoder);
        foreach (var r in reports)
            output.WriteLine($"latent {r.Neuron + 1}: heliocentric R² {r.Heliocentric.R2:0.00000} ({r.Heliocentric.W1:0.000}·φE + {r.Heliocentric.W2:0.000}·φM, {r.Heliocentric.Regions} regions), " +
                             $"geocentric R² {r.Geocentric.R2:0.00000} ({r.Geocentric.W1:0.000}·θS + {r.Geocentric.W2:0.000}·θM, {r.Geocentric.Regions} regions)");
        Assert.Equal(2, reports.Count);
        // Exactly φE and φM: R² = 1 and unit weights on the right angle.
        Assert.True(reports[0].Heliocentric.R2 > 0.99999 && reports[1].Heliocentric.R2 > 0.99999);
        Assert.Equal(1, reports[0].Heliocentric.W1, 6);
        Assert.Equal(0, reports[0].Heliocentric.W2, 6);
        Assert.Equal(0, reports[1].Heliocentric.W1, 6);
        Assert.Equal(1, reports[1].Heliocentric.W2, 6);
        // φE is θS + π, so Earth's angle fits the geocentric angles as well; φM does not.
        Assert.True(reports[0].Geocentric.R2 > 0.99999);
        Assert.True(reports[1].Geocentric.R2 < 0.95, $"φM fits the geocentric angles with R² {reports[1].Geocentric.R2}");
        string png = Path.Combine(Path.GetTempPath(), "reverie-copernican-latents.png");
        File.WriteAllBytes(png, CopernicusReport.LatentMaps(reports, maps));
        Assert.True(new FileInfo(png).Length > 10_000);
    }

    [Fact]
    public void TheFitIsWrapAwareButNotFooledByNoise()
    {
        var rng = new Random(9);
        int n = LatentAnalysis.Side;
        var mixed = new float[n, n];
        var noise = new float[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                // A mixture cut open along a wavy line rather than a straight one.
                double a1 = LatentAnalysis.Angle(j, n), a2 = LatentAnalysis.Angle(i, n);
                double cut = 3 + Math.Sin(a1);
                mixed[i, j] = (float)(0.7 * a1 - 1.3 * (a2 < cut ? a2 : a2 - 2 * Math.PI) + 0.25);
                noise[i, j] = (float)rng.NextDouble();
            }
        var fit = LatentAnalysis.Fit(mixed);
        output.WriteLine($"wavy cut: R² {fit.R2:0.00000}, {fit.W1:0.000}·a1 + {fit.W2:0.000}·a2, {fit.Regions} regions; noise: R² {LatentAnalysis.Fit(noise).R2:0.000}");
        Assert.True(fit.R2 > 0.9999);
        Assert.Equal(0.7, fit.W1, 4);
        Assert.Equal(-1.3, fit.W2, 4);
        Assert.True(LatentAnalysis.Fit(noise).R2 < 0.3); // regions and turns give noise a little room (measured 0.16), far from a fit
    }

    [Fact]
    public void ShortTrainingLowersTheLossDeterministically()
    {
        var options = new CopernicusOptions { Samples = 4000, Epochs = 8, Batch = 64, Seed = 3, HeldOut = 200 };
        var a = new CopernicusTrainer(options);
        a.Run();
        var b = new CopernicusTrainer(options);
        b.Run();
        foreach (var e in a.History) output.WriteLine($"epoch {e.Epoch}: train {e.TrainLoss:0.0000}, held-out {e.HeldOutLoss:0.0000}, MAE θS {e.MaeSun:0.000} θM {e.MaeMars:0.000}");
        Assert.True(a.History[^1].HeldOutLoss < 0.5 * a.Initial.HeldOutLoss, $"held-out loss {a.Initial.HeldOutLoss:0.000} -> {a.History[^1].HeldOutLoss:0.000}");
        Assert.True(a.History[^1].TrainLoss < a.History[0].TrainLoss);
        Assert.Equal(a.History.Select(e => e.HeldOutLoss), b.History.Select(e => e.HeldOutLoss));
    }

    /// <summary>
    /// The command is a job: the trained network with its recipe (options and, as results, the fits, errors and
    /// history) and three figures carrying the recipe; a second run into the folder replaces them, a file Reverie did not
    /// write is refused without --force, and replaying the recipe gives the same weights byte for byte.
    /// </summary>
    [Fact]
    public void TheCommandWritesTheNetworkItsRecipeAndPlotsAndReplays()
    {
        using var cli = new CliHost();
        string dir = Path.Combine(cli.Home.Path, "out");
        var (code, stdout, stderr) = cli.Run("science", "copernicus", "--samples", "500", "--epochs", "2", "--seed", "1", "-o", dir);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        foreach (var f in CopernicusJob.Figures)
            Assert.True(Reverie.Imaging.OutputFiles.WrittenByReverie(Path.Combine(dir, f)), $"{f} carries no recipe");
        Assert.True(new FileInfo(Path.Combine(dir, "scinet.dat")).Length > 1000);
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "scinet.recipe.json"))))
        {
            var root = json.RootElement;
            Assert.Equal("science-copernicus", root.GetProperty("command").GetString());
            Assert.Equal(500, root.GetProperty("options").GetProperty("samples").GetInt32());
            Assert.Equal(2, root.GetProperty("steps").GetInt32());
            var results = root.GetProperty("results");
            Assert.Equal(2, results.GetProperty("neurons").GetArrayLength());
            Assert.Equal(2, results.GetProperty("history").GetArrayLength());
            Assert.InRange(results.GetProperty("heldOutMaeRad").GetProperty("thetaSun").GetDouble(), 0, Math.PI);
            Assert.InRange(results.GetProperty("neurons")[0].GetProperty("heliocentric").GetProperty("r2").GetDouble(), -1, 1);
        }
        Assert.Contains("R²", stdout);

        // Again into the same folder: the files are Reverie's, so they are replaced.
        (code, _, stderr) = cli.Run("science", "copernicus", "--samples", "500", "--epochs", "1", "--seed", "1", "-o", dir);
        Assert.True(code == 0, stderr);
        // A figure's name taken by someone else's file: refused, and the file is kept.
        File.WriteAllText(Path.Combine(dir, "training.png"), "mine");
        (code, _, stderr) = cli.Run("science", "copernicus", "--samples", "500", "--epochs", "1", "-o", dir);
        Assert.Equal(2, code);
        Assert.Contains("--force", stderr);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(dir, "training.png")));

        // The recipe replays: the first run's options, the same weights.
        (code, _, stderr) = cli.Run("science", "copernicus", "--samples", "500", "--epochs", "2", "--seed", "1", "--force", "-o", dir);
        Assert.True(code == 0, stderr);
        string again = Path.Combine(cli.Home.Path, "again");
        Directory.CreateDirectory(again);
        (code, _, stderr) = cli.Run("replay", Path.Combine(dir, "scinet.recipe.json"), "-o", Path.Combine(again, "scinet.dat"));
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "scinet.dat")), File.ReadAllBytes(Path.Combine(again, "scinet.dat")));
        Assert.True(File.Exists(Path.Combine(again, "latents.png")));

        (code, _, stderr) = cli.Run("science", "copernicus", "--epochs", "0", "-o", dir);
        Assert.Equal(2, code);
        Assert.Contains("--epochs", stderr);
    }
}
