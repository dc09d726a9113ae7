using Google.Protobuf;
using TorchSharp;
using Reverie.Models.Onnx.Proto;
using static TorchSharp.torch;

namespace Reverie.Models.Onnx;

/// <summary>One node of an imported ONNX graph.</summary>
/// <param name="Index">Position in execution order.</param>
/// <param name="Name">The node's name (generated as OpType_index when the file has none).</param>
/// <param name="OpType">The ONNX operator.</param>
/// <param name="Inputs">Input tensor names ("" for an omitted optional input).</param>
/// <param name="Outputs">Output tensor names.</param>
internal sealed record OnnxNode(int Index, string Name, string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>
/// An ONNX graph imported as a TorchSharp module. It runs with autograd (input gradients flow;
/// the weights are frozen buffers), exposes every node output as a tap, and computes only the
/// nodes that the requested taps depend on.
/// </summary>
internal sealed class OnnxGraph : nn.Module<Tensor, Tensor>
{
    readonly List<(OnnxNode Node, OpKernel Kernel)> _nodes = new();
    readonly Dictionary<string, string> _bufferNames = new();
    Dictionary<string, Tensor> _constants = new();
    readonly Dictionary<string, int> _producer = new();
    readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);

    /// <summary>The graph's data inputs (initializers excluded).</summary>
    public IReadOnlyList<string> InputNames { get; }
    /// <summary>Declared shapes of the data inputs (-1 for a symbolic dimension).</summary>
    public IReadOnlyList<long[]> InputShapes { get; }
    /// <summary>The graph's outputs.</summary>
    public IReadOnlyList<string> OutputNames { get; }
    /// <summary>The default-domain opset the graph was written for.</summary>
    public int Opset { get; }
    /// <summary>The nodes in execution order.</summary>
    public IReadOnlyList<OnnxNode> Nodes => _nodes.Select(n => n.Node).ToList();
    /// <summary>Readable names derived from the weights (see <see cref="LayerNaming"/>), mapped to tensor names.</summary>
    public IReadOnlyDictionary<string, string> DerivedNames { get; }
    /// <summary>Lucid-style aliases (mixed4c ...) mapped to tensor names.</summary>
    public IReadOnlyDictionary<string, string> Aliases { get; }

    OnnxGraph(ModelProto model, string? baseDir, string what) : base("OnnxGraph")
    {
        TorchRuntime.Initialize();
        var g = model.Graph ?? throw new BadInputException($"'{what}' holds no graph; it is not an ONNX model or it is corrupt.");
        Opset = (int)(model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version ?? 1);

        var unsupported = g.Node.Where(n => !OnnxOps.IsSupported(n))
            .Select((n, i) => $"{(n.Domain is "" or "ai.onnx" ? "" : n.Domain + ".")}{n.OpType} (node '{(n.Name.Length > 0 ? n.Name : "#" + g.Node.IndexOf(n))}')")
            .ToList();
        if (unsupported.Count > 0)
            throw new BadInputException($"'{what}' uses operators Reverie does not support: {string.Join(", ", unsupported)}.");

        int b = 0;
        foreach (var init in g.Initializer)
        {
            var t = OnnxTensors.ToTensor(init, baseDir);
            string bufferName = $"c{b++}";
            register_buffer(bufferName, t);
            _bufferNames[init.Name] = bufferName;
            _constants[init.Name] = t;
        }

        var inputs = g.Input.Where(i => !_constants.ContainsKey(i.Name)).ToList();
        InputNames = inputs.Select(i => i.Name).ToList();
        InputShapes = inputs.Select(i => i.Type?.TensorType?.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray() ?? Array.Empty<long>()).ToList();
        OutputNames = g.Output.Select(o => o.Name).ToList();
        if (OutputNames.Count == 0) throw new BadInputException($"'{what}' declares no outputs; the file is incomplete or corrupt.");

        var ordered = TopologicalOrder(g, what);
        var usedNames = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < ordered.Count; i++)
        {
            var n = ordered[i];
            string name = n.Name.Length > 0 ? n.Name : $"{n.OpType}_{i}";
            while (!usedNames.Add(name)) name += "_";
            var node = new OnnxNode(i, name, n.OpType, n.Input.ToList(), n.Output.ToList());
            OpKernel kernel;
            try { kernel = OnnxOps.Create(n, name, Opset); }
            catch (ReverieException) { throw; }
            catch (Exception e) { throw new BadInputException($"'{what}': node '{name}' ({n.OpType}) cannot be built: {e.Message}", e); }
            _nodes.Add((node, kernel));
            foreach (var o in n.Output)
                if (o.Length > 0) _producer[o] = i;
        }
        foreach (var o in OutputNames)
            if (!_producer.ContainsKey(o) && !_constants.ContainsKey(o) && !InputNames.Contains(o))
                throw new BadInputException($"'{what}' names output '{o}' that no node produces; the file is incomplete or corrupt.");

        (DerivedNames, Aliases) = LayerNaming.Derive(Nodes, _constants.Keys.ToHashSet());
        foreach (var (node, _) in _nodes)
        {
            foreach (var o in node.Outputs) if (o.Length > 0) _names.TryAdd(o, o);
            if (node.Outputs.Count > 0 && node.Outputs[0].Length > 0) _names.TryAdd(node.Name, node.Outputs[0]);
        }
        foreach (var i in InputNames) _names.TryAdd(i, i);
        foreach (var (k, v) in DerivedNames) _names.TryAdd(k, v);
        foreach (var (k, v) in Aliases) _names.TryAdd(k, v);
    }

    static List<NodeProto> TopologicalOrder(GraphProto g, string what)
    {
        var available = new HashSet<string>(g.Initializer.Select(i => i.Name).Concat(g.Input.Select(i => i.Name))) { "" };
        var pending = g.Node.ToList();
        var order = new List<NodeProto>(pending.Count);
        while (pending.Count > 0)
        {
            int before = pending.Count;
            var still = new List<NodeProto>();
            foreach (var n in pending)
            {
                if (n.Input.All(available.Contains))
                {
                    order.Add(n);
                    foreach (var o in n.Output) available.Add(o);
                }
                else still.Add(n);
            }
            pending = still;
            if (pending.Count == before)
            {
                var n = pending[0];
                string missing = n.Input.First(i => !available.Contains(i));
                throw new BadInputException($"'{what}': node '{n.Name}' ({n.OpType}) reads tensor '{missing}' that nothing produces; the file is incomplete or corrupt.");
            }
        }
        return order;
    }

    /// <summary>Reads an ONNX model file. Bad or truncated files raise <see cref="BadInputException"/>.</summary>
    public static OnnxGraph Load(string path)
    {
        byte[] bytes = Imaging.InputFile.ReadAllBytes(path, "model file", Array.MaxLength, confined: false);
        return FromBytes(bytes, Path.GetDirectoryName(Path.GetFullPath(path)), path);
    }

    /// <summary>Parses an ONNX model held in memory; <paramref name="baseDir"/> resolves external data.</summary>
    public static OnnxGraph FromBytes(byte[] bytes, string? baseDir, string what = "model")
    {
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e)
        {
            throw new BadInputException($"'{what}' is not a valid ONNX model: it is truncated or corrupt ({e.Message.TrimEnd('.')}).", e);
        }
        if (model.Graph is { } graph) PrintableNames(graph);
        return new OnnxGraph(model, baseDir, what);
    }

    /// <summary>
    /// Names are shown on terminals and pages: a control character in one (an escape sequence that
    /// sets a terminal's title or clears it) becomes '?', the same in every place the name occurs,
    /// so that the graph's references still agree.
    /// </summary>
    static void PrintableNames(GraphProto g)
    {
        static bool Bad(string s) => s.Any(char.IsControl);
        static string Clean(string s) => Bad(s) ? new string([.. s.Select(c => char.IsControl(c) ? '?' : c)]) : s;
        static void List(Google.Protobuf.Collections.RepeatedField<string> names) { for (int i = 0; i < names.Count; i++) names[i] = Clean(names[i]); }
        foreach (var n in g.Node)
        {
            n.Name = Clean(n.Name);
            List(n.Input);
            List(n.Output);
            foreach (var a in n.Attribute) if (a.G is { } sub) PrintableNames(sub);
        }
        foreach (var t in g.Initializer) t.Name = Clean(t.Name);
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo)) v.Name = Clean(v.Name);
    }

    /// <summary>Every name a tap can be addressed by (tensor names, node names, derived names, aliases).</summary>
    public IReadOnlyCollection<string> TapNames => _names.Keys;

    /// <summary>Resolves a tap name (tensor, node, derived name or alias; case-insensitive as a fallback) to its tensor name.</summary>
    public string ResolveTap(string name)
    {
        if (_names.TryGetValue(name, out var t)) return t;
        var ci = _names.Keys.Where(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)).ToList();
        if (ci.Count == 1) return _names[ci[0]];
        var preferred = DerivedNames.Count > 0 ? DerivedNames.Keys.Concat(Aliases.Keys) : _names.Keys;
        var near = NameSuggestions.Nearest(name, preferred);
        throw new BadInputException($"The model has no layer '{name}'; nearest: {string.Join(", ", near)}.");
    }

    /// <summary>The node that produces a tensor, if any.</summary>
    public OnnxNode? Producer(string tensorName) => _producer.TryGetValue(tensorName, out int i) ? _nodes[i].Node : null;

    /// <summary>
    /// When set, every node's forward time is added here under its operator (convolutions by
    /// kernel size): the benchmarks' profile of where a network's time goes. CPU kernels run
    /// synchronously, so the times are the kernels' own.
    /// </summary>
    internal Dictionary<string, double>? ForwardSeconds { get; set; }

    static string OpKey(OnnxNode node, Tensor?[] args) =>
        node.OpType == "Conv" && args.Length > 1 && args[1] is { } w && w.dim() == 4 ? $"Conv {w.shape[2]}x{w.shape[3]}" : node.OpType;

    /// <summary>
    /// Runs the graph on the given inputs and returns the requested tensors. Only nodes that the
    /// requested tensors depend on are computed; intermediates are released as soon as no
    /// remaining node needs them. The caller owns the returned tensors.
    /// </summary>
    public Dictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> feeds, IEnumerable<string> wanted)
    {
        var want = wanted.Select(ResolveTap).ToHashSet();
        foreach (var i in InputNames)
            if (!feeds.ContainsKey(i) && NeedsInput(want, i))
                throw new BadInputException($"The graph needs input '{i}'.");

        var needed = new bool[_nodes.Count];
        var stack = new Stack<string>(want);
        var seen = new HashSet<string>();
        while (stack.Count > 0)
        {
            var t = stack.Pop();
            if (!seen.Add(t) || !_producer.TryGetValue(t, out int p) || needed[p]) continue;
            needed[p] = true;
            foreach (var i in _nodes[p].Node.Inputs) if (i.Length > 0) stack.Push(i);
        }
        var consumers = new Dictionary<string, int>();
        for (int k = 0; k < _nodes.Count; k++)
            if (needed[k])
                foreach (var i in _nodes[k].Node.Inputs)
                    if (i.Length > 0) consumers[i] = consumers.GetValueOrDefault(i) + 1;

        var values = new Dictionary<string, Tensor>();
        Tensor Lookup(string n) =>
            values.TryGetValue(n, out var v) ? v :
            _constants.TryGetValue(n, out var c) ? c :
            feeds.TryGetValue(n, out var f) ? f :
            throw new BadInputException($"Tensor '{n}' has no value.");

        for (int k = 0; k < _nodes.Count; k++)
        {
            if (!needed[k]) continue;
            var (node, kernel) = _nodes[k];
            var args = node.Inputs.Select(i => i.Length == 0 ? null : Lookup(i)).ToArray();
            Tensor[] outs;
            long started = ForwardSeconds is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            try { outs = kernel(args); }
            catch (ReverieException) { throw; }
            catch (Exception e)
            {
                throw new ReverieException($"Node '{node.Name}' ({node.OpType}) failed: {FirstLine(e.Message)}", e);
            }
            if (ForwardSeconds is not null)
            {
                string key = OpKey(node, args);
                ForwardSeconds[key] = ForwardSeconds.GetValueOrDefault(key) + System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
            }
            for (int o = 0; o < node.Outputs.Count && o < outs.Length; o++)
            {
                string name = node.Outputs[o];
                var t = outs[o];
                if (name.Length == 0 || (!consumers.ContainsKey(name) && !want.Contains(name))) { t.Dispose(); continue; }
                if (args.Any(a => ReferenceEquals(a, t))) t = t.alias();
                values[name] = t;
            }
            foreach (var i in node.Inputs)
            {
                if (i.Length == 0 || !consumers.ContainsKey(i)) continue;
                if (--consumers[i] == 0 && !want.Contains(i) && values.Remove(i, out var dead)) dead.Dispose();
            }
        }
        var result = new Dictionary<string, Tensor>();
        foreach (var w in want) result[w] = values.TryGetValue(w, out var v) ? v : Lookup(w).alias();
        return result;
    }

    bool NeedsInput(HashSet<string> want, string input)
    {
        var stack = new Stack<string>(want);
        var seen = new HashSet<string>();
        while (stack.Count > 0)
        {
            var t = stack.Pop();
            if (t == input) return true;
            if (!seen.Add(t) || !_producer.TryGetValue(t, out int p)) continue;
            foreach (var i in _nodes[p].Node.Inputs) if (i.Length > 0) stack.Push(i);
        }
        return false;
    }

    static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n');
        return (nl < 0 ? s : s[..nl]).Trim();
    }

    /// <summary>Runs the graph on its first input and returns its first output.</summary>
    public override Tensor forward(Tensor input)
    {
        var r = Run(new Dictionary<string, Tensor> { [InputNames[0]] = input }, [OutputNames[0]]);
        return r[OutputNames[0]];
    }

    /// <summary>Moves the weights to a device and, optionally, converts the floating-point ones to another precision.</summary>
    public void MoveTo(Device device, ScalarType? floatType = null)
    {
        this.to(device);
        if (floatType is { } ft) this.to(ft); // TorchSharp converts floating-point buffers only, as PyTorch does
        var buffers = named_buffers().ToDictionary(p => p.name, p => p.buffer);
        _constants = _bufferNames.ToDictionary(kv => kv.Key, kv => buffers[kv.Value]);
    }

    /// <summary>The current device of the weights.</summary>
    public Device Device => _constants.Values.FirstOrDefault()?.device ?? CPU;

    /// <summary>
    /// Cascading randomization (Adebayo et al. 2018, "Sanity checks for saliency maps"): the weights
    /// (initializers of rank 2 or more) of the last <paramref name="layers"/> nodes that have weights,
    /// counted from the output, are replaced in place by seeded normal values with each tensor's own
    /// standard deviation; biases are kept. Returns the nodes changed, from the top. Irreversible:
    /// load the model again for the trained weights.
    /// </summary>
    internal IReadOnlyList<string> RandomizeTop(int layers, int seed)
    {
        var changed = new List<string>();
        using var noGrad = no_grad();
        using var generator = new Generator((ulong)seed);
        for (int i = _nodes.Count - 1; i >= 0 && changed.Count < layers; i--)
        {
            var node = _nodes[i].Node;
            var weights = node.Inputs.Where(n => _constants.TryGetValue(n, out var t) && t.dim() >= 2 && t.is_floating_point()).Distinct().ToList();
            if (weights.Count == 0) continue;
            foreach (var w in weights)
            {
                var t = _constants[w];
                double std = t.to(ScalarType.Float32).std().item<float>();
                t.copy_(normal(0, std, t.shape, generator: generator).to(t.dtype));
            }
            changed.Add(node.Name);
        }
        return changed;
    }
}
