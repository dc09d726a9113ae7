using System.Text.Json;
using Reverie.Models.Registry;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Registry;

/// <summary>Registry entries for torchvision's .pth weights: the built-in list, and download with the file name's SHA-256 prefix against a loopback server.</summary>
public class TorchvisionRegistryTests
{
    [Fact]
    public void BuiltInEntriesNameTorchvisionsFilesAndTheirHashPrefixes()
    {
        var reg = new ModelRegistry(Path.Combine(Path.GetTempPath(), "reverie-none"), Path.Combine(Path.GetTempPath(), "reverie-none.json"));
        var expected = new Dictionary<string, string>
        {
            ["vgg16"] = "vgg16-397923af.pth", ["vgg19"] = "vgg19-dcbb9e9d.pth", ["alexnet"] = "alexnet-owt-7be5be79.pth",
            ["resnet50"] = "resnet50-0676ba61.pth", ["mobilenet_v2"] = "mobilenet_v2-b0353104.pth", ["googlenet-tv"] = "googlenet-1378be20.pth",
            ["inception_v3"] = "inception_v3_google-0cc3c7bd.pth",
        };
        foreach (var (name, file) in expected)
        {
            var e = reg.Get(name);
            Assert.Equal("https://download.pytorch.org/models/" + file, e.Url);
            Assert.Equal("pth", e.Format);
            Assert.EndsWith("-" + e.Sha256Prefix + ".pth", file);
            Assert.Equal(file, e.FileName);
        }
    }

    [Fact]
    public async Task DownloadsVerifiesThePrefixAndOpensTheNativeNetwork()
    {
        using var dir = new TempDir();
        string raw = dir.File("raw.pth");
        var (code, text) = Python.Run(Path.Combine(Paths.RepoRoot, "tests", "scripts", "torchvision_native.py"), "mobilenet_v2", "features.14", raw,
            dir.File("x.f32"), dir.File("logits.f32"), dir.File("layer.f32"), "64");
        Assert.True(code == 0, text);
        string hash = Downloader.Sha256Of(raw);
        Directory.CreateDirectory(dir.File("www"));
        string served = $"mobilenet_v2-{hash[..8]}.pth";
        File.Copy(raw, dir.File(Path.Combine("www", served)));
        using var server = new LoopbackServer(dir.File("www"));
        ModelRegistry Registry(string route, string prefix)
        {
            var json = new { models = new[] { new { name = "mnv2", format = "pth", url = $"{server.Url}/{route}/{served}", sha256Prefix = prefix, labels = "imagenet" } } };
            File.WriteAllText(dir.File("models.json"), JsonSerializer.Serialize(json));
            return new ModelRegistry(dir.File("cache"), dir.File("models.json"));
        }

        // A corrupted body, or a prefix that the file's hash does not start with, is refused and leaves nothing behind.
        var bad = await Assert.ThrowsAsync<ReverieException>(() => Registry("corrupt", hash[..8]).PullAsync("mnv2"));
        Assert.Contains("does not begin with", bad.Message);
        bad = await Assert.ThrowsAsync<ReverieException>(() => Registry("ok", hash[..7] + (hash[7] == '0' ? '1' : '0')).PullAsync("mnv2"));
        Assert.Contains("does not begin with", bad.Message);
        Assert.False(File.Exists(Path.Combine(dir.File("cache"), "models", "mnv2", served)));

        var reg = Registry("ok", hash[..8]);
        using var net = await reg.OpenAsync("mnv2");
        Assert.Equal(ModelStatus.Verified, reg.Status(reg.Get("mnv2")));
        Assert.Equal("mnv2", net.Name);
        using var scope = NewDisposeScope();
        var x = tensor(RawFloats.Read(dir.File("x.f32"))).reshape(1, 3, 64, 64);
        using var noGrad = no_grad();
        var logits = net.Forward(x, [net.OutputLayer])[net.OutputLayer];
        var peer = tensor(RawFloats.Read(dir.File("logits.f32"))).reshape(1, 1000);
        Assert.True(((logits - peer).abs().max() / peer.abs().max()).item<float>() < 1e-4);
    }
}
