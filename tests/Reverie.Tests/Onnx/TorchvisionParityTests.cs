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
