using System.Text.Json;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Cli;

/// <summary>`reverie classify` with BVLC GoogLeNet on the sample photographs.</summary>
public class ClassifyCliTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    [Fact]
    public void ClassifiesTheSamples()
    {
        var (code, stdout, stderr) = cli.Host.Run("classify", Paths.Sample("coffee.png"), Paths.Sample("chelsea.png"), Paths.Sample("rocket.jpg"), "--top", "3", "--json", "--offline");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var tops = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("top").EnumerateArray()
            .Select(t => (Label: t.GetProperty("label").GetString()!, P: t.GetProperty("probability").GetSingle())).ToList()).ToList();
        Assert.Equal("espresso", tops[0][0].Label);
        Assert.True(tops[0][0].P > 0.9f, $"p(espresso) = {tops[0][0].P}");
        Assert.Contains(tops[1][0].Label, new[] { "Egyptian cat", "tiger cat", "tabby" });
        float cats = tops[1].Where(t => t.Label is "Egyptian cat" or "tiger cat" or "tabby").Sum(t => t.P);
        Assert.True(cats > 0.95f, $"cat classes hold {cats}");
        Assert.Equal("missile", tops[2][0].Label);
        Assert.Equal(3, tops[2].Count);
    }

    [Fact]
    public void PrintsATable()
    {
        var (code, stdout, _) = cli.Host.Run("classify", Paths.Sample("coffee.png"), "--top", "2");
        Assert.Equal(0, code);
        Assert.Contains("espresso", stdout);
        Assert.Contains("0.99", stdout);
    }

    [Fact]
    public void LayerTableHasTheCaffeNames()
    {
        var (code, stdout, stderr) = cli.Host.Run("models", "layers", "googlenet");
        Assert.True(code == 0, stderr);
        foreach (var name in new[] { "conv1/7x7_s2", "conv2/3x3", "inception_3a/1x1", "inception_4c/3x3", "inception_3a/output", "inception_4c/output", "inception_5b/output", "mixed4c" })
            Assert.Contains(name, stdout);
        Assert.Matches(@"inception_4c/output\s.*mixed4c.*Concat.*\[1,512,13,13\]\s.*512", stdout.Split('\n').First(l => l.Contains("inception_4c/output ")));
    }
}
