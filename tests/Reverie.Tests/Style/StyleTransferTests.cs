using System.Globalization;
using Reverie.Objectives;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Recipes;
using Reverie.Style;
using Reverie.Tests.Dreaming;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Style;

/// <summary>Gatys style transfer with bvlc_googlenet as the loss network.</summary>
public class StyleTransferTests(BvlcGoogLeNet model, ITestOutputHelper output) : IClassFixture<BvlcGoogLeNet>
{
    INetwork Net => model.Net;
    static readonly string[] ContentLayers = ["inception_4a/output"];
    static readonly string[] StyleLayers = ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output"];
    static string StylePath => Path.Combine(Paths.RepoRoot, "docs", "gallery", "chelsea-inception_4c-output.jpg");

    [Fact]
    public void GramIsNormalizedByChannelsTimesPixels()
    {
        using var scope = NewDisposeScope();
        var f = randn(2, 3, 4, 5);
        var g = Gram.Of(f);
        var flat = f.reshape(2, 3, 20);
        // One entry by hand.
        double expected = Enumerable.Range(0, 20).Sum(k => flat[1, 0, k].item<float>() * (double)flat[1, 2, k].item<float>()) / (3 * 20);
        Assert.Equal(expected, g[1, 0, 2].item<float>(), 5);
        Assert.Equal(g[1, 2, 0].item<float>(), g[1, 0, 2].item<float>(), 6);
    }

    [Fact]
    public void StyleLossFallsTenfoldWhileContentStaysBelowNoise()
    {
        using var scope = NewDisposeScope();
        var content = ImageIO.Load(Paths.Sample("coffee.png"));
        var style = ImageIO.Load(StylePath);
        var options = new StyleOptions { Size = 128, Steps = 60, ContentLayers = ContentLayers, StyleLayers = StyleLayers };
        var transfer = new StyleTransfer(Net, content, [(style, 1.0)], options);
        var result = transfer.Run();
        var noise = transfer.Measure(rand(transfer.Content.shape, generator: new Generator(1)));
        var start = transfer.History[0];
        var end = transfer.Measure(result);
        output.WriteLine($"style loss {start.Style:G4} -> {end.Style:G4} ({start.Style / end.Style:0.0}x); content loss {end.Content:G4}, at noise {noise.Content:G4}");
        Assert.True(end.Style * 10 <= start.Style, $"style loss only fell from {start.Style:G4} to {end.Style:G4}");
        Assert.True(end.Content < noise.Content, $"content loss {end.Content:G4} is not below noise's {noise.Content:G4}");
        Assert.Equal(transfer.Content.shape, result.shape);
    }

    [Fact]
    public void StylesBlendByWeight()
    {
        using var scope = NewDisposeScope();
        var content = ImageIO.Load(Paths.Sample("coffee.png"));
        var a = ImageIO.Load(StylePath);
        var b = ImageIO.Load(Paths.Sample("hubble_deep_field.jpg"));
        // neural-style's raw terms: normalized ones divide by the (blended) target's size, which this arithmetic leaves out.
        var options = new StyleOptions { Size = 96, Steps = 1, ContentLayers = [], ContentWeight = 0, StyleLayers = ["inception_3a/output"], LossScale = "neural-style" };
        // The blended target is the weighted mean of the Gram matrices. Measured on A itself (scaled
        // as the style targets are), the loss is 0 against A alone, D against B alone, and D/4
        // against A and B blended half and half.
        double f = 96.0 / Math.Max(a.shape[2], a.shape[3]);
        var x = ImageIO.Resize(a, (int)Math.Round(a.shape[2] * f), (int)Math.Round(a.shape[3] * f));
        double onlyA = new StyleTransfer(Net, content, [(a, 1.0)], options).Measure(x).Style;
        double onlyB = new StyleTransfer(Net, content, [(b, 1.0)], options).Measure(x).Style;
        double half = new StyleTransfer(Net, content, [(a, 3.0), (b, 3.0)], options).Measure(x).Style;
        output.WriteLine($"style loss of A: against A {onlyA:G5}, against B {onlyB:G5}, against A:3 + B:3 {half:G5} (expected {onlyB / 4:G5})");
        Assert.True(onlyA < 1e-6 * onlyB);
        Assert.Equal(onlyB / 4, half, onlyB * 1e-4);
    }
}

/// <summary>The style commands, run as a user would.</summary>
public class StyleCliTests(GoogLeNetCli cli, ITestOutputHelper output) : IClassFixture<GoogLeNetCli>
{
    static string StylePath => Path.Combine(Paths.RepoRoot, "docs", "gallery", "chelsea-inception_4c-output.jpg");

    [Fact]
    public void StyleRecordsItsRecipeAndLosses()
    {
        string outPath = Path.Combine(cli.Host.Home.Path, "styled.png");
        var (code, stdout, stderr) = cli.Host.Run("style", Paths.Sample("coffee.png"), StylePath + ":2", "--size", "96", "--steps", "12", "--save-every", "6", "-o", outPath);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        var recipe = Recipe.Load(outPath);
        Assert.Equal("style", recipe.Command);
        Assert.Equal(12, (int)recipe.Results!["iterations"]!);
        Assert.Equal(12, recipe.Steps);
        Assert.Equal("lbfgs", (string)recipe.Options!["style"]!["optimizer"]!);
        Assert.Equal(2.0, (double)recipe.Options["styles"]![0]!["weight"]!);
        Assert.Contains(recipe.Arguments, a => a.EndsWith("chelsea-inception_4c-output.jpg:2"));
        Assert.True(File.Exists(Path.Combine(cli.Host.Home.Path, "styled-6.png")));
        Assert.True(File.Exists(Path.Combine(cli.Host.Home.Path, "styled-12.png")));
    }

    [Fact]
    public void GridHasMoreStyleAsTheRatioFalls()
    {
        string outPath = Path.Combine(cli.Host.Home.Path, "grid.png");
        var (code, stdout, stderr) = cli.Host.Run("style", "grid", Paths.Sample("coffee.png"), StylePath, "--layers", "inception_3a/output,inception_4a/output",
            "--ratios", "1,0.1,0.01", "--size", "96", "--steps", "40", "-o", outPath);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        using var grid = ImageIO.Load(outPath);
        Assert.True(grid.shape[2] > 2 * 60 && grid.shape[3] > 3 * 96, $"grid is {grid.shape[3]}x{grid.shape[2]}");
        var rows = Recipe.Load(outPath).Results!["styleLoss"]!.AsArray();
        Assert.Equal(2, rows.Count);
        foreach (var row in rows)
        {
            var losses = row!.AsArray().Select(v => (double)v!).ToList();
            Assert.Equal(3, losses.Count);
            // Ratios 1, 0.1, 0.01: less content weight, more style, so the style loss falls along the row.
            Assert.True(losses[0] > losses[1] && losses[1] > losses[2], "style loss not monotone: " + string.Join(", ", losses.Select(l => l.ToString("G4", CultureInfo.InvariantCulture))));
        }
    }

    [Fact]
    public void StylizeRefusesWhatIsNotAStyleNetwork()
    {
        string outPath = Path.Combine(cli.Host.Home.Path, "s.png");
        var (code, _, stderr) = cli.Host.Run("stylize", Paths.Sample("coffee.png"), "--net", Paths.GoogLeNet, "-o", outPath);
        Assert.Equal(2, code);
        Assert.Contains("cannot stylize", stderr);
        (code, _, stderr) = cli.Host.Run("stylize", Paths.Sample("coffee.png"), "--net", Path.Combine(cli.Host.Home.Path, "none.onnx"), "-o", outPath);
        Assert.Equal(2, code);
        Assert.Contains("does not exist", stderr);
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void StylizeIsAJobWhoseRecipeReplaysBitForBit()
    {
        // A seeded, untrained style network: what matters is that the command, the library and the
        // replay compute the same picture, and that the recipe is the options record.
        string net = Path.Combine(cli.Host.Home.Path, "net.onnx"), a = Path.Combine(cli.Host.Home.Path, "a.png"), b = Path.Combine(cli.Host.Home.Path, "b.png");
        random.manual_seed(4);
        using (var transformer = new TransformerNet()) File.WriteAllBytes(net, transformer.ToOnnx());
        var (code, stdout, stderr) = cli.Host.Run("stylize", Paths.Sample("coffee.png"), "--net", net, "--max-size", "160", "-o", a);
        Assert.True(code == 0, stdout + stderr);
        var recipe = Recipe.Load(a);
        Assert.Equal("stylize", recipe.Command);
        Assert.Equal(Path.GetFullPath(net), (string?)recipe.Options!["model"]);
        Assert.Equal(Path.GetFullPath(Paths.Sample("coffee.png")), (string?)recipe.Options!["image"]);
        Assert.Equal(160, (int)recipe.Options!["maxSize"]!);
        Assert.Equal(2, recipe.Inputs.Count);
        Assert.Equal(160L, (long)recipe.Results!["width"]!);

        (code, stdout, stderr) = cli.Host.Run("replay", a, "-o", b);
        Assert.True(code == 0, stdout + stderr);
        using var first = ImageIO.Load(a);
        using var second = ImageIO.Load(b);
        Assert.Equal(0f, (first - second).abs().max().item<float>());
        // The library's own call on the same photo gives the same picture (after 8-bit rounding).
        using var stylizer = Stylizer.Load(net);
        using var photo = ImageIO.Load(Paths.Sample("coffee.png"), 160); // decoded at reduced size, as the command does
        using var small = photo.shape[3] > 160 ? ImageIO.Resize(photo, 107, 160) : photo.alias();
        using var direct = stylizer.Apply(small);
        double diff = (direct - first).abs().max().item<float>();
        Assert.True(diff <= 0.5 / 255 + 1e-6, $"the command's picture differs from the library's by {diff * 255:0.00} levels");
    }

    [Fact]
    public void StylizeTrainIsAJobWhoseRecipeRetrainsTheSameNetwork()
    {
        string dir = Path.Combine(cli.Host.Home.Path, "photos"), net = Path.Combine(cli.Host.Home.Path, "dreamy.onnx"), again = Path.Combine(cli.Host.Home.Path, "again.onnx");
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "coffee.png", "chelsea.png" })
            using (var photo = ImageIO.Load(Paths.Sample(name), 96)) ImageIO.Save(photo, Path.Combine(dir, name));
        var (code, stdout, stderr) = cli.Host.Run("stylize", "train", "--style", StylePath, "--data", dir, "--size", "64", "--epochs", "2", "--crops", "2", "--batch", "2", "--seed", "3", "-o", net);
        Assert.True(code == 0, stdout + stderr);
        var recipe = Recipe.Load(net);
        Assert.Equal("stylize train", recipe.Command);
        Assert.Equal(3, recipe.Inputs.Count); // the style image and the two photos
        // The layers the loss network's defaults chose are in the recipe, so that it replays anywhere.
        Assert.Equal("inception_3a/output", (string?)recipe.Options!["training"]!["contentLayers"]![0]);
        Assert.Equal(4, recipe.Results!["history"]!.AsArray().Count); // 2 photos x 2 crops / batch 2 x 2 epochs
        Assert.Equal(4, recipe.Steps);

        (code, stdout, stderr) = cli.Host.Run("replay", OutputFiles.SidecarOf(net), "-o", again);
        Assert.True(code == 0, stdout + stderr);
        // The replay retrains the same network. Usually to the byte; in one fresh-clone CI run
        // the first layer's weights differed in their last bits (libtorch's threaded reductions
        // need not add in the same order), so the two networks are compared by what they paint.
        // And the network stylizes.
        string styled = Path.Combine(cli.Host.Home.Path, "styled.png"), styledAgain = Path.Combine(cli.Host.Home.Path, "styled-again.png");
        (code, stdout, stderr) = cli.Host.Run("stylize", Paths.Sample("coffee.png"), "--net", net, "--max-size", "64", "-o", styled);
        Assert.True(code == 0, stdout + stderr);
        (code, stdout, stderr) = cli.Host.Run("stylize", Paths.Sample("coffee.png"), "--net", again, "--max-size", "64", "-o", styledAgain);
        Assert.True(code == 0, stdout + stderr);
        using var first = ImageIO.Load(styled);
        using var second = ImageIO.Load(styledAgain);
        double most = (first - second).abs().max().item<float>() * 255, mean = (first - second).abs().mean().item<float>() * 255;
        // Each training's losses and skipped steps, so that a difference says where the two runs parted.
        static string Trace(string onnx) => Recipe.Load(onnx).Results is { } r ? $"skipped {r["skippedSteps"]}, losses {r["history"]?.ToJsonString()}" : "no results";
        string why = $"first: {Trace(net)}; replay: {Trace(again)}";
        output.WriteLine($"replayed training: networks {(File.ReadAllBytes(net).AsSpan().SequenceEqual(File.ReadAllBytes(again)) ? "identical" : "differ")}; stylized pictures differ by at most {most:0.00} levels (mean {mean:0.000}); {why}");
        Assert.True(most <= 3 && mean <= 0.5, $"the replayed network paints differently: at most {most:0.00} levels, mean {mean:0.000}; {why}");
    }

    [Theory]
    [InlineData("--optimizer", "sgd", "--optimizer must be lbfgs or adam")]
    [InlineData("--style-layers", "inception_9z/output", "inception_9z/output")]
    [InlineData("--steps", "0", "--steps must be from 1")]
    public void BadOptionsAreOneSentence(string option, string value, string expected)
    {
        var (code, _, stderr) = cli.Host.Run("style", Paths.Sample("coffee.png"), StylePath, option, value, "-o", Path.Combine(cli.Host.Home.Path, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
    }
}
