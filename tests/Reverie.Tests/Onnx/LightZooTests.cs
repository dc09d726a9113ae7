using Reverie.Models.Onnx;
using Reverie.Models.Onnx.Proto;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

/// <summary>The nine light ONNX-zoo graphs of ../shared/onnx-light against the expected outputs of the ONNX reference evaluator.</summary>
public class LightZooTests
{
    [Theory]
    [InlineData("bvlc_alexnet", 1e-3)]
    [InlineData("densenet121", 2e-3)]
    [InlineData("inception_v1", 1e-3)]
    [InlineData("inception_v2", 1e-3)]
    [InlineData("resnet50", 1e-3)]
    [InlineData("shufflenet", 1e-3)]
    [InlineData("squeezenet", 1e-3)]
    [InlineData("vgg19", 1e-3)]
    [InlineData("zfnet512", 1e-3)]
    public void MatchesExpectedOutput(string name, double rtol)
    {
        string path = Path.Combine(Paths.OnnxLight, $"light_{name}.onnx");
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        using var scope = NewDisposeScope();
        using var g = OnnxGraph.Load(path);
        var input = model.Graph.Input.Single(i => i.Name == g.InputNames[0]);
        long[] shape = input.Type.TensorType.Shape.Dim.Select(d => d.DimValue > 0 ? d.DimValue : 1).ToArray();
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var x = arange(S(n), dtype: ScalarType.Float32).reshape(shape) / S(n);
        var y = g.Run(new Dictionary<string, Tensor> { [g.InputNames[0]] = x }, [g.OutputNames[0]])[g.OutputNames[0]];
        var expected = ConformanceTests.ReadTensor(Path.Combine(Paths.OnnxLight, $"light_{name}_output_0.pb"));
        var (ok, detail) = ConformanceTests.Compare(y, expected, rtol, 1e-7);
        Assert.True(ok, detail);
    }
}
