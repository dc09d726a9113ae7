using Google.Protobuf;
using Reverie.Models.Onnx.Proto;

namespace Reverie.Tests.Infrastructure;

/// <summary>Builds small ONNX graphs in code for tests.</summary>
internal sealed class GraphBuilder
{
    readonly ModelProto _model = new() { IrVersion = 7, Graph = new GraphProto { Name = "test" } };
    readonly Random _rng;

    public GraphBuilder(int opset = 13, int seed = 0)
    {
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        _rng = new Random(seed);
    }

    public GraphBuilder Input(string name, params long[] shape)
    {
        var t = new TypeProto.Types.Tensor { ElemType = 11, Shape = new TensorShapeProto() };
        foreach (var d in shape) t.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        _model.Graph.Input.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = t } });
        return this;
    }

    public GraphBuilder Output(string name)
    {
        _model.Graph.Output.Add(new ValueInfoProto { Name = name });
        return this;
    }

    /// <summary>A float64 initializer with random values in [lo, hi).</summary>
    public GraphBuilder Weight(string name, double lo, double hi, params long[] shape)
    {
        var p = new TensorProto { Name = name, DataType = 11 };
        p.Dims.AddRange(shape);
        long n = shape.Aggregate(1L, (a, b) => a * b);
        for (long i = 0; i < n; i++) p.DoubleData.Add(lo + _rng.NextDouble() * (hi - lo));
        _model.Graph.Initializer.Add(p);
        return this;
    }

    public GraphBuilder Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Name = outputs[0] + "_node" };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attrs);
        _model.Graph.Node.Add(n);
        return this;
    }

    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    public static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

    public byte[] Bytes() => _model.ToByteArray();
}
