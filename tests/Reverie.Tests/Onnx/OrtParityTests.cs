using Reverie.Models.Onnx;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

/// <summary>Real trained networks against ONNX Runtime on the same input: max |diff| ≤ tol × max |output|.</summary>
public class OrtParityTests
{
    internal static (double MaxDiff, double MaxAbs) Compare(string modelPath, float[] input, int[] shape, string? output = null)
    {
        using var scope = NewDisposeScope();
        using var g = OnnxGraph.Load(modelPath);
        string outName = output ?? g.OutputNames[0];
        var proto = Reverie.Models.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        if (!proto.Graph.Output.Any(o => o.Name == outName)) proto.Graph.Output.Add(new Reverie.Models.Onnx.Proto.ValueInfoProto { Name = outName });
        var ort = Ort.Run(Google.Protobuf.MessageExtensions.ToByteArray(proto), g.InputNames[0], input, shape, outName)[outName];
        var mine = g.Run(new Dictionary<string, Tensor> { [g.InputNames[0]] = tensor(input).reshape(shape.Select(v => (long)v).ToArray()) }, [outName])[outName];
        Assert.Equal(ort.Shape.Select(v => (long)v).ToArray(), mine.shape);
        var a = mine.flatten().data<float>().ToArray();
        double maxDiff = a.Zip(ort.Data).Max(p => Math.Abs(p.First - p.Second));
        double maxAbs = ort.Data.Max(v => Math.Abs(v));
        return (maxDiff, maxAbs);
    }

    internal static float[] RandomInput(int n, int seed, float lo, float hi)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(lo + rng.NextDouble() * (hi - lo))).ToArray();
    }

    [Fact]
    public void BvlcGoogLeNet()
    {
        // The logits (before the softmax) are the sensitive output; check both.
        var x = RandomInput(3 * 224 * 224, 1, -120, 130);
        var (d, m) = Compare(Paths.GoogLeNet, x, [1, 3, 224, 224], "r143");
        Assert.True(d <= 1e-4 * m, $"logits: max diff {d} vs max {m}");
        (d, m) = Compare(Paths.GoogLeNet, x, [1, 3, 224, 224]);
        Assert.True(d <= 1e-4 * m, $"probabilities: max diff {d} vs max {m}");
    }

    [Fact]
    public void SqueezeNetFloat16()
    {
        var x = RandomInput(3 * 224 * 224, 2, 0, 255);
        var (d, m) = Compare(Path.Combine(Paths.Models, "squeezenet1.0_fp16.onnx"), x, [1, 3, 224, 224]);
        Assert.True(d <= 1e-2 * m, $"max diff {d} vs max {m}");
    }

    [Fact]
    public void Mnist()
    {
        var x = RandomInput(28 * 28, 3, 0, 255);
        var (d, m) = Compare(Path.Combine(Paths.Models, "mnist.onnx"), x, [1, 1, 28, 28]);
        Assert.True(d <= 1e-4 * m, $"max diff {d} vs max {m}");
    }
}
