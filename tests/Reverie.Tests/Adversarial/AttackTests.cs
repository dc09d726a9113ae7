using Reverie.Adversarial;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Recipes;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Adversarial;

/// <summary>L∞ attacks on BVLC GoogLeNet.</summary>
public class AttackTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;

    Tensor Coffee() => ImageIO.Resize(ImageIO.Load(Paths.Sample("coffee.png")), 224, 224);

    [Fact]
    public void EveryResultStaysInTheBallAndInRange()
    {
        var rng = new Random(11);
        var methods = Enum.GetValues<AttackMethod>();
        double worst = 0;
        for (int k = 0; k < 24; k++)
        {
            using var scope = NewDisposeScope();
            // Random images, some pushed against 0 and 1 so that clipping matters.
            var x = (rand(new long[] { 1, 3, 224, 224 }, generator: new Generator((ulong)k)) * S(1.4) - S(0.2)).clamp(S(0), S(1));
            var o = new AttackOptions
            {
                Method = methods[k % methods.Length], Eps = rng.NextDouble() * 0.1, Steps = 1 + rng.Next(4),
                StepSize = rng.Next(2) == 0 ? null : rng.NextDouble() * 0.05 + 1e-3,
            };
            if (o.Apgd) o = o with { StepSize = null }; // APGD chooses its own
            o = o with
            {
                Target = rng.Next(3) == 0 && methods[k % methods.Length] is not (AttackMethod.DeepFool or AttackMethod.DeepFoolLinf) ? rng.Next(1000) : null, // deepfool is untargeted
                RandomStart = rng.Next(2) == 0, Seed = k,
            };
            var adv = Reverie.Adversarial.Attack.Run(Net, x, tensor(new long[] { rng.Next(1000) }), o);
            double linf = (adv - x).abs().max().item<float>();
            if (o.Method is AttackMethod.PgdL2 or AttackMethod.DeepFool or AttackMethod.HopSkipJump)
            {
                double l2 = (adv - x).norm().item<float>();
                Assert.True(l2 <= o.Eps * (1 + 1e-5) + 1e-6, $"case {k} (pgd-l2, radius {o.Eps:G4}): |x*-x|2 = {l2:G6}");
            }
            worst = Math.Max(worst, linf - o.Eps);
            Assert.True(linf <= o.Eps + 1e-6, $"case {k} ({o.Method}, eps {o.Eps:G4}): |x*-x| = {linf:G6}");
            Assert.True(adv.min().item<float>() >= 0 && adv.max().item<float>() <= 1, $"case {k} leaves 0..1");
            var noise = Reverie.Adversarial.Attack.SignNoise(x, o.Eps, k);
            Assert.True((noise - x).abs().max().item<float>() <= o.Eps + 1e-6);
        }
        output.WriteLine($"24 random attacks; largest |x*-x| - eps = {worst:G3}");
    }

    [Fact]
    public void BimAtOnePercentChangesTheLabelImperceptibly()
    {
        using var scope = NewDisposeScope();
        var x = Coffee();
        int label = Classifier.Classify(Net, x, 1)[0].Index;
        Assert.Equal("espresso", Net.Labels![label]);
        var adv = Reverie.Adversarial.Attack.Run(Net, x, tensor(new long[] { label }), new AttackOptions { Method = AttackMethod.Bim, Eps = 0.01, Steps = 10 });
        var after = Classifier.Classify(Net, adv, 1)[0];
        double psnr = Filters.Psnr(adv, x);
        double? smallest = Reverie.Adversarial.Attack.SmallestFgsmEps(Net, x, label);
        output.WriteLine($"BIM eps 0.01 T 10: espresso -> {after.Label} (p {after.Probability:0.000}), PSNR {psnr:0.0} dB; smallest FGSM eps that flips it: {smallest}");
        Assert.NotEqual(label, after.Index);
        Assert.True(psnr >= 35, $"PSNR {psnr:0.0} dB");
        Assert.True(smallest is <= 0.02, $"smallest FGSM eps {smallest}");
        // At that eps FGSM flips the label, and just below it does not.
        var at = Reverie.Adversarial.Attack.Run(Net, x, tensor(new long[] { label }), new AttackOptions { Method = AttackMethod.Fgsm, Eps = smallest!.Value });
        Assert.NotEqual(label, Classifier.Classify(Net, at, 1)[0].Index);
        var below = Reverie.Adversarial.Attack.Run(Net, x, tensor(new long[] { label }), new AttackOptions { Method = AttackMethod.Fgsm, Eps = smallest.Value - 0.001 });
        Assert.Equal(label, Classifier.Classify(Net, below, 1)[0].Index);
    }

    [Fact]
    public void TargetedPgdReachesTheTarget()
    {
        using var scope = NewDisposeScope();
        var x = Coffee();
        int goldfish = Net.Labels!.ToList().IndexOf("goldfish");
        var adv = Reverie.Adversarial.Attack.Run(Net, x, tensor(new long[] { 967 }), new AttackOptions { Method = AttackMethod.Pgd, Eps = 0.03, Steps = 20, StepSize = 0.005, Target = goldfish });
        var after = Classifier.Classify(Net, adv, 1)[0];
        output.WriteLine($"targeted PGD eps 0.03: espresso -> {after.Label} ({after.Probability:0.000})");
        Assert.Equal(goldfish, after.Index);
    }
}

/// <summary>The attack command.</summary>
public class AttackCliTests(GoogLeNetCli cli, ITestOutputHelper output) : IClassFixture<GoogLeNetCli>
{
    [Fact]
    public void WritesTheImageThePerturbationAndTheRecipe()
    {
        // The case: BIM at eps 0.01 on the whole 600x400 photo flips espresso, the saved PNG stays
        // within ⌈0.01·255⌉ = 3 levels of the photo, and classify, reading the file, no longer says espresso.
        string outPath = Path.Combine(cli.Host.Home.Path, "adv.png");
        var (code, stdout, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "bim", "--eps", "0.01", "-o", outPath);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains("espresso", stdout);
        Assert.Contains("read back from adv.png", stdout);
        Assert.True(File.Exists(Path.Combine(cli.Host.Home.Path, "adv-perturbation.png")));
        var recipe = Recipe.Load(outPath);
        Assert.Equal("attack", recipe.Command);
        Assert.True((double)recipe.Results!["linf"]! <= 3 / 255.0 + 1e-6);
        Assert.Equal("bim", (string)recipe.Options!["attack"]!["method"]!);
        using (var adv = ImageIO.Load(outPath))
        using (var photo = ImageIO.Load(Paths.Sample("coffee.png")))
        {
            Assert.Equal(photo.shape, adv.shape);
            double levels = (adv - photo).abs().max().item<float>() * 255;
            output.WriteLine($"largest change: {levels:0.00} levels");
            Assert.True(levels <= 3 + 1e-3, $"{levels} levels");
            Assert.True(levels >= 1, "the attack changed nothing");
        }
        var (_, classified, _) = cli.Host.Run("classify", outPath, "--top", "1");
        output.WriteLine(classified);
        Assert.DoesNotContain("espresso", classified);

        // pgd-l2: the saved image (8 bits) stays inside the L2 ball of radius 3 and still fools the model.
        (code, stdout, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "pgd-l2", "--eps", "3", "-o", outPath);
        output.WriteLine(stdout);
        Assert.True(code == 0, stdout + stderr);
        using (var adv = ImageIO.Load(outPath))
        using (var photo = ImageIO.Load(Paths.Sample("coffee.png")))
        {
            double l2 = (adv - photo).norm().item<float>();
            Assert.InRange(l2, 0.5, 3.0);
        }
        Assert.Contains("label changed", stdout);

        // deepfool: the smallest change it finds, still adversarial once saved at 8 bits; smaller than pgd-l2's.
        (code, stdout, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "deepfool", "-o", outPath);
        output.WriteLine(stdout);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("label changed", stdout);
        Assert.DoesNotContain("says espresso", stdout);
        Assert.Contains("no cap", stdout); // its eps of 0 means no cap, and says so (it printed "eps 0")
        Assert.DoesNotContain("eps 0,", stdout);
        using (var adv = ImageIO.Load(outPath))
        using (var photo = ImageIO.Load(Paths.Sample("coffee.png")))
            Assert.InRange((adv - photo).norm().item<float>(), 0.1, 2.165);

        // --at-input-size: the photo shrunk to the network's input, as before 0.3.
        (code, stdout, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "mifgsm", "--eps", "0.02", "--steps", "3", "--at-input-size", "-o", outPath);
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal("miFgsm", (string)Recipe.Load(outPath).Options!["attack"]!["method"]!);
        using (var small = ImageIO.Load(outPath)) Assert.Equal(new long[] { 1, 3, 224, 224 }, small.shape);

        // apgd-ce on the whole photo: its own step size (2·eps, halved as it goes), the saved PNG within ⌈0.01·255⌉ = 3 levels, espresso gone.
        (code, stdout, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "apgd-ce", "--eps", "0.01", "--steps", "20", "-o", outPath);
        output.WriteLine(stdout);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("label changed", stdout);
        Assert.Equal("apgdCe", (string)Recipe.Load(outPath).Options!["attack"]!["method"]!);
        using (var adv = ImageIO.Load(outPath))
        using (var photo = ImageIO.Load(Paths.Sample("coffee.png")))
            Assert.InRange((adv - photo).abs().max().item<float>() * 255, 1, 3 + 1e-3);
        (code, _, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "apgd-ce", "--step-size", "0.01", "-o", outPath);
        Assert.Equal(2, code);
        Assert.Contains("apgd chooses its own step size", stderr);

        (code, _, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--method", "boundary", "-o", outPath);
        Assert.Equal(2, code);
        Assert.Contains("--method must be fgsm, bim, pgd, mifgsm, pgd-l2, deepfool, deepfool-linf, cw, square, apgd-ce, apgd-dlr or hopskipjump", stderr);
        (code, _, stderr) = cli.Host.Run("attack", Paths.Sample("coffee.png"), "--targeted", "--target", "goldfsh", "-o", outPath);
        Assert.Equal(2, code);
        Assert.Contains("goldfish", stderr);
    }
}
