using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Cli;

/// <summary>Bad input gets one clear sentence on stderr, exit code 2, and no stack trace.</summary>
public class BadInputTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    static void AssertOneClearLine(int code, string stderr, string mustContain)
    {
        Assert.True(code == 2, $"exit {code}: {stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.Contains("NNPACK")).ToList();
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mustContain, lines[0]);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void MissingImage()
    {
        var (code, _, err) = cli.Host.Run("classify", "/nonexistent/photo.jpg");
        AssertOneClearLine(code, err, "does not exist");
    }

    [Fact]
    public void CorruptImage()
    {
        using var tmp = Paths.Temp();
        string f = tmp.File("broken.png");
        var bytes = File.ReadAllBytes(Paths.Sample("coffee.png"));
        File.WriteAllBytes(f, bytes.Take(bytes.Length / 3).ToArray());
        var (code, _, err) = cli.Host.Run("classify", f);
        AssertOneClearLine(code, err, "broken.png");
        File.WriteAllText(f, "this is not an image");
        (code, _, err) = cli.Host.Run("classify", f);
        AssertOneClearLine(code, err, "not an image");
    }

    [Fact]
    public void TruncatedOnnx()
    {
        using var tmp = Paths.Temp();
        string f = tmp.File("half.onnx");
        var bytes = File.ReadAllBytes(Paths.GoogLeNet);
        File.WriteAllBytes(f, bytes.Take(bytes.Length / 2).ToArray());
        var (code, _, err) = cli.Host.Run("classify", Paths.Sample("coffee.png"), "--model", f);
        AssertOneClearLine(code, err, "half.onnx");
        Assert.Matches("truncated|incomplete|corrupt", err);
        (code, _, err) = cli.Host.Run("models", "add", "half", f);
        AssertOneClearLine(code, err, "half.onnx");
        Assert.False(Directory.Exists(Path.Combine(cli.Host.Cache, "models", "half")));
    }

    [Fact]
    public void UnknownModel()
    {
        var (code, _, err) = cli.Host.Run("classify", Paths.Sample("coffee.png"), "--model", "googlenett");
        AssertOneClearLine(code, err, "Unknown model 'googlenett'");
        Assert.Contains("googlenet", err);
    }

    [Fact]
    public void UnknownLayerSuggestsNearestNames()
    {
        var (code, _, err) = cli.Host.Run("models", "layers", "googlenet", "--layer", "inception_4x/output");
        AssertOneClearLine(code, err, "no layer 'inception_4x/output'");
        Assert.Contains("inception_4a/output", err);
    }

    [Fact]
    public void BadOptionValue()
    {
        var (code, _, err) = cli.Host.Run("classify", Paths.Sample("coffee.png"), "--top", "0");
        AssertOneClearLine(code, err, "--top");
        (code, _, err) = cli.Host.Run("classify", Paths.Sample("coffee.png"), "--top", "many");
        AssertOneClearLine(code, err, "many");
    }

    [Fact]
    public void UnsupportedOperatorsAreListedBeforeAnyCompute()
    {
        using var tmp = Paths.Temp();
        var g = new GraphBuilder(13).Input("x", 1, 3, 4, 4).Output("z")
            .Node("Erf", ["x"], ["y"]).Node("Relu", ["y"], ["r"]).Node("Mish", ["r"], ["z"]);
        string f = tmp.File("odd.onnx");
        File.WriteAllBytes(f, g.Bytes());
        var (code, _, err) = cli.Host.Run("models", "layers", f);
        AssertOneClearLine(code, err, "Erf (node 'y_node')");
        Assert.Contains("Mish (node 'z_node')", err);
    }
}
