using Reverie.Models.Onnx;
using static TorchSharp.torch;

namespace Reverie.Models;

/// <summary>An ONNX graph behind the <see cref="INetwork"/> abstraction.</summary>
internal sealed class OnnxNetwork : INetwork
{
    readonly OnnxGraph _graph;
    List<LayerInfo>? _layers;

    /// <summary>Wraps an imported graph with its input spec and labels.</summary>
    public OnnxNetwork(string name, OnnxGraph graph, InputSpec input, IReadOnlyList<string>? labels)
    {
        Name = name;
        _graph = graph;
        Input = input;
        Labels = labels;
        OutputLayer = graph.OutputNames[0];
        var last = graph.Producer(OutputLayer);
        OutputIsProbability = last?.OpType == "Softmax";
        LogitsLayer = OutputIsProbability ? last!.Inputs[0] : OutputLayer;
        if (graph.InputNames.Count != 1)
            throw new BadInputException($"Model '{name}' has {graph.InputNames.Count} data inputs; Reverie runs image models with exactly one.");
        ChannelsLast = Environment.GetEnvironmentVariable("REVERIE_CHANNELS_LAST") switch
        {
            "1" => true,
            "0" => false,
            _ => true,
        };
    }

    /// <summary>
    /// Run convolutional graphs channels-last (NHWC memory), where libtorch's oneDNN convolutions
    /// are fastest on CPU: about twice as fast as contiguous for torchvision-style graphs, and up to
    /// a quarter faster for Caffe's GoogLeNet (bench dream-default), whose LRN is then a 1-D average
    /// over each pixel's adjacent channels (OnnxOps.Lrn). 1×1 convolutions then run as matrix
    /// products (see OnnxOps.PointwiseChannelsLast). $REVERIE_CHANNELS_LAST=0 or 1 overrides the choice.
    /// </summary>
    public bool ChannelsLast { get; set; }

    /// <summary>Loads an ONNX file; the input spec defaults to RGB 0..1 at the graph's declared size.</summary>
    public static OnnxNetwork Load(string path, string? name = null, InputSpec? input = null, IReadOnlyList<string>? labels = null)
    {
        var g = OnnxGraph.Load(path);
        if (input is null)
        {
            var shape = g.InputShapes.Count > 0 ? g.InputShapes[0] : [];
            input = new InputSpec
            {
                Height = shape.Length == 4 && shape[2] > 0 ? (int)shape[2] : 224,
                Width = shape.Length == 4 && shape[3] > 0 ? (int)shape[3] : 224,
                Channels = shape.Length == 4 && shape[1] == 1 ? ChannelOrder.Gray : ChannelOrder.Rgb,
            };
        }
        return new OnnxNetwork(name ?? Path.GetFileNameWithoutExtension(path), g, input, labels);
    }

    /// <summary>The imported graph.</summary>
    public OnnxGraph Graph => _graph;
    /// <inheritdoc/>
    public string Name { get; }
    /// <inheritdoc/>
    public InputSpec Input { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string>? Labels { get; }
    /// <inheritdoc/>
    public string OutputLayer { get; }
    /// <inheritdoc/>
    public bool OutputIsProbability { get; }
    /// <inheritdoc/>
    public string? LogitsLayer { get; }
    /// <inheritdoc/>
    public Device Device => _graph.Device;
    /// <inheritdoc/>
    public void To(Device device, ScalarType? floatType = null) => _graph.MoveTo(device, floatType);

    /// <inheritdoc/>
    public string ResolveLayer(string name) => _graph.ResolveTap(name);

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> Forward(Tensor images, IReadOnlyCollection<string> layers)
    {
        var x = Input.Preprocess(images);
        if (ChannelsLast && x.dim() == 4 && Device.type == TorchSharp.DeviceType.CPU) x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var resolved = layers.Select(ResolveLayer).ToList();
        return _graph.Run(new Dictionary<string, Tensor> { [_graph.InputNames[0]] = x }, resolved);
    }

    /// <inheritdoc/>
    public IReadOnlyList<LayerInfo> Layers => _layers ??= ComputeLayers();

    List<LayerInfo> ComputeLayers()
    {
        var byTensor = new Dictionary<string, List<string>>();
        void Add(string alias, string tensor) => (byTensor.TryGetValue(tensor, out var l) ? l : byTensor[tensor] = new()).Add(alias);
        foreach (var (k, v) in _graph.DerivedNames) Add(k, v);
        foreach (var (k, v) in _graph.Aliases) Add(k, v);
        var nodes = _graph.Nodes.Where(n => n.Outputs.Count > 0 && n.Outputs[0].Length > 0).ToList();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var outputs = nodes.Select(n => n.Outputs[0]).ToList();
        var image = full(new long[] { 1, 3, Input.Height, Input.Width }, S(0.5f), device: Device);
        var values = _graph.Run(new Dictionary<string, Tensor> { [_graph.InputNames[0]] = Input.Preprocess(image) }, outputs);
        var result = new List<LayerInfo>();
        foreach (var n in nodes)
        {
            string t = n.Outputs[0];
            var names = byTensor.GetValueOrDefault(t) ?? new List<string>();
            var derived = names.Where(_graph.DerivedNames.ContainsKey).ToList();
            string canonical = derived.FirstOrDefault() ?? t;
            var aliases = names.Where(a => a != canonical).Append(t).Append(n.Name).Where(a => a != canonical).Distinct().ToList();
            result.Add(new LayerInfo(canonical, aliases, n.OpType, values[t].shape));
        }
        return result;
    }

    /// <inheritdoc/>
    public void Dispose() => _graph.Dispose();
}
