using System.Globalization;
using Reverie.Recipes;
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
        // With -o, the row as CSV and its recipe, which replays the same attack.
        (code, o, e) = host.Run("attack", "--data", "fashion-mnist", "--model", "fashion", "--limit", "5", "--method", "bim", "--eps", "0.05", "--steps", "3", "-o", host.Home.File("bim.csv"));
        Assert.True(code == 0, e);
        (code, o, e) = host.Run("replay", host.Home.File("bim.recipe.json"), "-o", host.Home.File("bim-again.csv"));
        Assert.True(code == 0, e);
        Assert.Contains("over 50 images", o);
        Assert.Equal(File.ReadAllText(host.Home.File("bim.csv")), File.ReadAllText(host.Home.File("bim-again.csv")));

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

        // A job: the recipe beside the CSV measures the same sweep again.
        (code, o, e) = host.Run("replay", host.Home.File("sweep.recipe.json"), "-o", host.Home.File("again.csv"));
        Assert.True(code == 0, e);
        Assert.Equal(lines, File.ReadAllLines(host.Home.File("again.csv")));
        Assert.True(File.Exists(host.Home.File("again.png")));
    }

    /// <summary>
    /// <c>attack benchmark</c> end to end on the built-in fashion model: the table, the JSON report (worst case never
    /// above an attack's robust accuracy, and equal to the share of images listed as robust), the Markdown, the plot
    /// with the run's recipe, the recipe beside the report, which replays to the same numbers; a bad suite is one sentence.
    /// </summary>
    [Fact]
    public void TheBenchmarkWritesAReportThatItsRecipeReplays()
    {
        using var host = new CliHost();
        string dir = host.Home.File("bench");
        Directory.CreateDirectory(dir);
        string report = Path.Combine(dir, "r.json");
        string[] args = ["attack", "benchmark", "-m", "fashion", "--data", "fashion-mnist", "--n", "40", "--eps", "0.05,0.1", "--suite", "apgd-ce,apgd-t,square", "--steps", "20", "--targets", "2", "--queries", "100", "-o", report];
        var (code, stdout, stderr) = host.Run(args);
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("worst case", stdout);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(40, (int)json["images"]!);
        var rows = json["rows"]!.AsArray();
        Assert.Equal(2, rows.Count);
        foreach (var row in rows)
        {
            double worst = (double)row!["worstCase"]!;
            var attacks = row["attacks"]!.AsArray();
            Assert.Equal(["apgd-ce", "apgd-t", "square"], attacks.Select(a => (string)a!["attack"]!).ToArray());
            Assert.All(attacks, a => Assert.True(worst <= (double)a!["robustAccuracy"]!));
            Assert.Equal(worst, row["robust"]!.AsArray().Count / 40.0, 6);
            Assert.True((double)attacks[2]!["queriesPerImage"]! <= 100);
        }
        Assert.True((double)rows[1]!["worstCase"]! <= (double)rows[0]!["worstCase"]!, "more budget, more robust images");
        Assert.Contains("| eps | clean | apgd-ce | apgd-t | square | worst case |", File.ReadAllText(Path.ChangeExtension(report, ".md")));
        Assert.True(PngText.Read(File.ReadAllBytes(Path.ChangeExtension(report, ".png"))).ContainsKey(Recipe.Keyword));
        var recipe = Recipe.Load(Path.Combine(dir, "r.recipe.json"));
        Assert.Equal("attack benchmark", recipe.Command);
        // Replayed from its recipe: the same robust accuracies, attack for attack.
        string again = Path.Combine(dir, "again.json");
        (code, stdout, stderr) = host.Run("replay", Path.Combine(dir, "r.recipe.json"), "-o", again);
        Assert.True(code == 0, stdout + stderr);
        static string Accuracies(string path) => string.Join(",", System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!["rows"]!.AsArray()
            .SelectMany(r => r!["attacks"]!.AsArray().Select(a => (double)a!["robustAccuracy"]!)));
        Assert.Equal(Accuracies(report), Accuracies(again));
        (code, _, stderr) = host.Run("attack", "benchmark", "--data", "fashion-mnist", "--suite", "apgd-ce,fab", "-o", report);
        Assert.Equal(2, code);
        Assert.Contains("unknown attack 'fab'", stderr);
    }

    [Fact]
    public void EvolvesFoolingImages()
    {
        using var host = new CliHost();
        string dir = host.Home.File("fool");
        var (code, o, e) = host.Run("fool", "--model", "fashion", "--class", "Trouser", "--class", "Bag", "--encoding", "direct", "--generations", "4", "--population", "12", "-o", dir);
        output.WriteLine(o + e);
        Assert.True(code == 0, e);
        foreach (var f in new[] { "001-trouser.png", "008-bag.png", "fooling.png", "fooling.recipe.json", "fooling.csv", "fooling.json" }) Assert.True(File.Exists(Path.Combine(dir, f)), f);
        Assert.Equal(1 + 2 * 4, File.ReadAllLines(Path.Combine(dir, "fooling.csv")).Length);
        // Run again into the same folder: its own files are replaced, with no --force.
        var rerun = host.Run("fool", "--model", "fashion", "--class", "Trouser", "--class", "Bag", "--encoding", "direct", "--generations", "4", "--population", "12", "-o", dir);
        Assert.True(rerun.Code == 0, rerun.Err);

        // A job like the others: its recipe beside the sheet replays the same evolution into another folder.
        string again = host.Home.File("again");
        Directory.CreateDirectory(again);
        var (rc, ro, re) = host.Run("replay", Path.Combine(dir, "fooling.png"), "-o", Path.Combine(again, "fooling.png"));
        output.WriteLine(ro + re);
        Assert.True(rc == 0, re);
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "fooling.csv")), File.ReadAllText(Path.Combine(again, "fooling.csv")));
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "fooling.json")), File.ReadAllText(Path.Combine(again, "fooling.json")));
    }

    [Theory]
    [InlineData("Give either an IMAGE or --data", "attack", "--model", "fashion")]
    [InlineData("--eps must be from 0 to 1; got 1.5", "attack", "--data", "fashion-mnist", "--model", "fashion", "--method", "bim", "--eps", "1.5")]
    [InlineData("--eps is pgd-l2's L2 radius and must be above 0", "attack", "--data", "fashion-mnist", "--model", "fashion", "--method", "pgd-l2", "--eps", "0")]
    [InlineData("--eps is pgd-l2's L2 radius and must be above 0", "attack", "--data", "fashion-mnist", "--model", "fashion", "--method", "pgd-l2", "--eps", "-1")]
    [InlineData("--steps must be from 1 to 100000; got 0", "attack", "--data", "fashion-mnist", "--model", "fashion", "--method", "square", "--eps", "0.1", "--steps", "0")]
    [InlineData("--steps must be from 1 to 100000; got 0", "attack", "--data", "fashion-mnist", "--model", "fashion", "--method", "hopskipjump", "--steps", "0")]
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
