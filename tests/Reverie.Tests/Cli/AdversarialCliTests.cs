using System.Globalization;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Cli;

/// <summary><c>reverie attack --data</c>, <c>reverie attack sweep</c> and <c>reverie fool</c> on the embedded Fashion-MNIST models.</summary>
public class AdversarialCliTests(ITestOutputHelper output)
{
    [Fact]
    public void AttacksADataSetAndSweepsEps()
    {
        using var host = new CliHost();
        var (code, o, e) = host.Run("attack", "--data", "fashion-mnist", "--model", "fashion", "--limit", "20", "--method", "fgsm", "--eps", "0.1");
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        Assert.Contains("over 200 images", o);

        string csv = host.Home.File("sweep.csv");
        (code, o, e) = host.Run("attack", "sweep", "--model", "fashion", "--surrogate", "fashion-mlp", "--data", "fashion-mnist", "--limit", "10",
            "--eps", "0,0.1", "--steps", "1,10", "-o", csv);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        var lines = File.ReadAllLines(csv);
        Assert.Equal("kind,eps,steps,images,clean_accuracy,accuracy,success_rate,mean_confidence,max_linf", lines[0]);
        Assert.Equal(1 + 2 * 2 * 3, lines.Length);
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(',');
            double eps = double.Parse(f[1], CultureInfo.InvariantCulture), linf = double.Parse(f[8], CultureInfo.InvariantCulture);
            Assert.True(linf <= eps + 1e-6, line);
            if (eps == 0) Assert.Equal(f[4], f[5]); // no budget, no change
        }
        Assert.True(File.Exists(host.Home.File("sweep.png")));
    }

    [Fact]
    public void EvolvesFoolingImages()
    {
        using var host = new CliHost();
        string dir = host.Home.File("fool");
        var (code, o, e) = host.Run("fool", "--model", "fashion", "--class", "Trouser", "--class", "Bag", "--encoding", "direct", "--generations", "4", "--population", "12", "-o", dir);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        foreach (var f in new[] { "001-trouser.png", "008-bag.png", "fooling.png", "log.csv", "results.json" }) Assert.True(File.Exists(Path.Combine(dir, f)), f);
        Assert.Equal(1 + 2 * 4, File.ReadAllLines(Path.Combine(dir, "log.csv")).Length);
    }

    [Theory]
    [InlineData("Give either an IMAGE or --data", "attack", "--model", "fashion")]
    [InlineData("comma-separated list", "attack", "sweep", "--model", "fashion", "--data", "fashion-mnist", "--eps", "0,abc", "-o", "x.csv")]
    [InlineData("--class, or use --all-classes", "fool", "--model", "fashion", "-o", "dir")]
    [InlineData("--encoding must be direct or cppn", "fool", "--model", "fashion", "--all-classes", "--encoding", "dna", "-o", "dir")]
    public void BadAdversarialInputGetsExitCode2(string message, params string[] args)
    {
        using var host = new CliHost();
        var (code, _, e) = host.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, e);
    }
}
