using Google.Protobuf;
using Reverie.Models.Onnx;
using Reverie.Models.Onnx.Proto;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

public class DebugTests(ITestOutputHelper output)
{
    [Fact]
    public void PerNode()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Paths.GoogLeNet));
        foreach (var n in model.Graph.Node) foreach (var o in n.Output) model.Graph.Output.Add(new ValueInfoProto { Name = o });
        var bytes = model.ToByteArray();
        var rng = new Random(1);
        var input = Enumerable.Range(0, 3 * 224 * 224).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
        var names = model.Graph.Node.SelectMany(n => n.Output).Distinct().ToArray();
        var ort = Ort.Run(bytes, "data_0", input, [1, 3, 224, 224], names);
        using var g = OnnxGraph.Load(Paths.GoogLeNet);
        var mine = g.Run(new Dictionary<string, Tensor> { ["data_0"] = tensor(input).reshape(1, 3, 224, 224) }, names);
        foreach (var n in model.Graph.Node)
        {
            var o = n.Output[0];
            var a = mine[o].flatten().data<float>().ToArray();
            var b = ort[o].Data;
            double md = a.Length != b.Length ? double.NaN : a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
            output.WriteLine($"{n.OpType} {o} [{string.Join(",", mine[o].shape)}] vs [{string.Join(",", ort[o].Shape)}] maxdiff {md}");
        }
    }
}
