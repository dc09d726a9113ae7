using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Onnx;

/// <summary>torchvision architectures exported by Debian's PyTorch 1.13, run by Reverie and by ONNX Runtime.</summary>
public class TorchvisionParityTests
{
    [Theory]
    [InlineData("googlenet", 13)]
    [InlineData("googlenet", 11)]
    [InlineData("resnet18", 9)]
    [InlineData("mobilenet_v2", 11)]
    [InlineData("squeezenet1_1", 13)]
    public void MatchesOnnxRuntime(string name, int opset)
    {
        string path = TorchvisionExports.Get(name, opset);
        var x = OrtParityTests.RandomInput(3 * 224 * 224, 7, -2, 2);
        var (d, m) = OrtParityTests.Compare(path, x, [1, 3, 224, 224]);
        Assert.True(m > 0);
        Assert.True(d <= 1e-4 * m, $"{name} opset {opset}: max diff {d} vs max {m}");
    }
}

/// <summary>Layers of PyTorch exports are addressable by torchvision's module paths.</summary>
public class TorchExportNamingTests
{
    [Fact]
    public void ModulePathsNameTheModuleOutputs()
    {
        using var g = Reverie.Models.Onnx.OnnxGraph.Load(TorchvisionExports.Get("googlenet", 13));
        Assert.Equal("Concat", g.Producer(g.ResolveTap("inception4c"))!.OpType);
        Assert.Equal("Relu", g.Producer(g.ResolveTap("inception4c.branch2.1"))!.OpType);
        using var r = Reverie.Models.Onnx.OnnxGraph.Load(TorchvisionExports.Get("resnet18", 9));
        Assert.Equal("Relu", r.Producer(r.ResolveTap("layer3.1"))!.OpType);
        Assert.Equal("Gemm", r.Producer(r.ResolveTap("fc"))!.OpType);
    }
}
