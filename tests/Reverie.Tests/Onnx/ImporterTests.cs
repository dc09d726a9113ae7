using Google.Protobuf;
using Reverie.Models.Onnx;
using Reverie.Models.Onnx.Proto;
using Reverie.Tests.Infrastructure;
using static Reverie.Tests.Infrastructure.GraphBuilder;
using static TorchSharp.torch;

namespace Reverie.Tests.Onnx;

/// <summary>Initializer encodings, external data, and the truncated forward.</summary>
public class ImporterTests
{
    static ModelProto AddGraph(Action<TensorProto> fill)
    {
        var b = new GraphBuilder(13).Input("x", 2, 3).Output("y").Node("Add", ["x", "w"], ["y"]);
        var m = ModelProto.Parser.ParseFrom(b.Bytes());
        var w = new TensorProto { Name = "w" };
        w.Dims.AddRange([2, 3]);
        fill(w);
        m.Graph.Initializer.Add(w);
        return m;
    }

    static double[] RunAdd(ModelProto m, string? dir = null)
    {
        using var scope = NewDisposeScope();
        using var g = OnnxGraph.FromBytes(m.ToByteArray(), dir, "test");
        var y = g.Run(new Dictionary<string, Tensor> { ["x"] = zeros(2, 3, dtype: ScalarType.Float64) }, ["y"])["y"];
        return y.to(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    static readonly float[] Values = [1.5f, -2f, 0.25f, 3f, -0.5f, 8f];

    [Fact]
    public void AGraphThatFixesItsBatchAtOneStillTakesBatches()
    {
        // Caffe's GoogLeNet flattens to [1, 1024] before its classifier: a batch keeps its batch there.
        using var scope = NewDisposeScope();
        using var net = Reverie.Models.OnnxNetwork.Load(Paths.GoogLeNet, "googlenet", Reverie.Tests.Dreaming.BvlcGoogLeNet.Spec);
        using var noGrad = no_grad();
        manual_seed(7);
        var x = rand(3, 3, 224, 224);
        string output = net.ResolveLayer(net.OutputLayer);
        var batch = net.Forward(x, [output])[output];
        Assert.Equal(new long[] { 3, 1000 }, batch.shape);
        for (int i = 0; i < 3; i++)
        {
            var one = net.Forward(x.narrow(0, i, 1), [output])[output];
            double diff = (one[0] - batch[i]).abs().max().item<float>();
            Assert.True(diff < 1e-5, $"image {i}: batched and single outputs differ by {diff:G3}");
        }
    }

    [Fact]
    public void Float16RawDataBecomesFloat32()
    {
        var m = AddGraph(w =>
        {
            w.DataType = 10;
            w.RawData = ByteString.CopyFrom(Values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray());
        });
        Assert.Equal(Values.Select(v => (double)v), RunAdd(m));
    }

    [Fact]
    public void Float16InTypedFieldAndBFloat16()
    {
        var m = AddGraph(w => { w.DataType = 10; w.Int32Data.AddRange(Values.Select(v => (int)BitConverter.HalfToUInt16Bits((Half)v))); });
        Assert.Equal(Values.Select(v => (double)v), RunAdd(m));
        m = AddGraph(w => { w.DataType = 16; w.RawData = ByteString.CopyFrom(Values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(v) >> 16))).ToArray()); });
        Assert.Equal(Values.Select(v => (double)v), RunAdd(m));
    }

    [Fact]
    public void Int32AndInt64TypedFields()
    {
        var m = AddGraph(w => { w.DataType = 6; w.Int32Data.AddRange([1, -2, 3, 4, 5, -6]); });
        Assert.Equal(new double[] { 1, -2, 3, 4, 5, -6 }, RunAdd(m));
        m = AddGraph(w => { w.DataType = 7; w.Int64Data.AddRange([1, -2, 3, 4, 5, 1L << 40]); });
        Assert.Equal(new double[] { 1, -2, 3, 4, 5, 1L << 40 }, RunAdd(m));
    }

    [Fact]
    public void ExternalDataIsReadAndConfinedToTheModelFolder()
    {
        using var tmp = Paths.Temp();
        var bytes = new byte[8].Concat(Values.SelectMany(BitConverter.GetBytes)).ToArray();
        File.WriteAllBytes(tmp.File("weights.bin"), bytes);
        ModelProto External(string location) => AddGraph(w =>
        {
            w.DataType = 1;
            w.DataLocation = TensorProto.Types.DataLocation.External;
            w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
            w.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "8" });
            w.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = "24" });
        });
        Assert.Equal(Values.Select(v => (double)v), RunAdd(External("weights.bin"), tmp.Path));
        var e = Assert.Throws<BadInputException>(() => RunAdd(External("../../etc/passwd"), tmp.Path));
        Assert.Contains("outside the model's folder", e.Message);
        e = Assert.Throws<BadInputException>(() => RunAdd(External("missing.bin"), tmp.Path));
        Assert.Contains("does not exist", e.Message);
        // Issue 16, defect 14: a link inside the folder that points out of it is outside too.
        File.CreateSymbolicLink(tmp.File("link.bin"), "/etc/passwd");
        Directory.CreateDirectory(tmp.File("sub"));
        File.CreateSymbolicLink(tmp.File("sub/up"), "/etc");
        foreach (var escape in new[] { "link.bin", "sub/up/passwd" })
        {
            e = Assert.Throws<BadInputException>(() => RunAdd(External(escape), tmp.Path));
            Assert.Contains("outside the model's folder", e.Message);
        }
        // A link that stays inside the folder is fine.
        File.CreateSymbolicLink(tmp.File("inside.bin"), tmp.File("weights.bin"));
        Assert.Equal(Values.Select(v => (double)v), RunAdd(External("inside.bin"), tmp.Path));
    }

    [Fact]
    public void ShapeDisagreeingWithDataIsRefused()
    {
        var m = AddGraph(w => { w.DataType = 1; w.FloatData.AddRange([1f, 2f]); });
        var e = Assert.Throws<BadInputException>(() => RunAdd(m));
        Assert.Contains("holds 2 values", e.Message);
    }

    [Fact]
    public void ForwardStopsAtTheRequestedTap()
    {
        // The second node would fail (an impossible reshape); asking for the first node's output never runs it.
        var b = new GraphBuilder(13).Input("x", 1, 4).Output("z")
            .Node("Relu", ["x"], ["r"]).Node("Reshape", ["r", "shape"], ["z"]);
        var m = ModelProto.Parser.ParseFrom(b.Bytes());
        var shape = new TensorProto { Name = "shape", DataType = 7 };
        shape.Dims.Add(2);
        shape.Int64Data.AddRange([3, 5]);
        m.Graph.Initializer.Add(shape);
        using var scope = NewDisposeScope();
        using var g = OnnxGraph.FromBytes(m.ToByteArray(), null, "test");
        var feeds = new Dictionary<string, Tensor> { ["x"] = tensor(new double[] { -1, 2, -3, 4 }).reshape(1, 4) };
        var r = g.Run(feeds, ["r"])["r"];
        Assert.Equal(new double[] { 0, 2, 0, 4 }, r.flatten().data<double>().ToArray());
        var e = Assert.Throws<ReverieException>(() => g.Run(feeds, ["z"]));
        Assert.Contains("Reshape", e.Message);
        Assert.Equal("r", g.ResolveTap("r_node"));
    }
}
