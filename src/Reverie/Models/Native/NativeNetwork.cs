using TorchSharp;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>
/// Base of the networks Reverie builds natively in TorchSharp from torchvision's architectures.
/// Submodules carry torchvision's names, so a torchvision state_dict loads by name. A subclass
/// writes its forward pass once, calling <see cref="Tap"/> after each named layer; requesting
/// layers then returns their outputs and stops the pass after the deepest one (a truncated
/// forward). Input: RGB in 0..1, normalized with ImageNet's mean and std inside.
/// </summary>
internal abstract class NativeNetwork : nn.Module<Tensor, Tensor>, INetwork
{
    readonly Dictionary<string, string> _aliases = new(StringComparer.Ordinal);
    List<LayerInfo>? _layers;
    HashSet<string>? _wanted;
    Dictionary<string, Tensor>? _taps;

    sealed class Done : Exception;

    /// <summary>Creates the network with a display name.</summary>
    protected NativeNetwork(string name) : base(name)
    {
        TorchRuntime.Initialize();
        Name = name;
    }

    /// <summary>Adds a friendly name for a layer.</summary>
    protected void Alias(string alias, string layer) => _aliases[alias] = layer;

    /// <summary>The forward pass from normalized input; call <see cref="Tap"/> after each named layer and return the logits.</summary>
    protected abstract Tensor Run(Tensor x);

    /// <summary>Records a layer's output when it was asked for, and stops once every asked-for layer is recorded.</summary>
    protected Tensor Tap(string name, Tensor x)
    {
        if (_taps is null) { _layers?.Add(new LayerInfo(name, _aliases.Where(a => a.Value == name).Select(a => a.Key).ToList(), "", x.shape)); return x; }
        if (_wanted!.Contains(name))
        {
            _taps[name] = x;
            if (_taps.Count == _wanted.Count) throw new Done();
        }
        return x;
    }

    /// <summary>
    /// torchvision's transform_input: from ImageNet normalization to the (x - 0.5) / 0.5 that its
    /// pretrained GoogLeNet and Inception-v3 weights were trained on.
    /// </summary>
    protected static Tensor TransformToHalfRange(Tensor x) =>
        cat([x.narrow(1, 0, 1) * S((0.229 / 0.5)) + S((0.485 - 0.5) / 0.5),
             x.narrow(1, 1, 1) * S((0.224 / 0.5)) + S((0.456 - 0.5) / 0.5),
             x.narrow(1, 2, 1) * S((0.225 / 0.5)) + S((0.406 - 0.5) / 0.5)], 1);

    /// <inheritdoc/>
    public string Name { get; protected set; }
    /// <inheritdoc/>
    public InputSpec Input { get; protected init; } = new() { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
    /// <inheritdoc/>
    public IReadOnlyList<string>? Labels { get; protected init; } = Registry.Labels.ImageNet;
    /// <inheritdoc/>
    public abstract string OutputLayer { get; }
    /// <inheritdoc/>
    public bool OutputIsProbability => false;
    /// <inheritdoc/>
    public string? LogitsLayer => OutputLayer;
    /// <inheritdoc/>
    public Device Device => parameters().First().device;

    /// <summary>Every tapped layer with its output shape at the input size (found by one pass on a gray image).</summary>
    public IReadOnlyList<LayerInfo> Layers
    {
        get
        {
            if (_layers is { Count: > 0 }) return _layers;
            _layers = new List<LayerInfo>();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            bool wasTraining = training;
            eval(); // the probe must not move batch-norm statistics
            try { Run(Input.Preprocess(full(1, 3, Input.Height, Input.Width, S(0.5f), device: Device))); }
            finally { if (wasTraining) train(); }
            return _layers;
        }
    }

    /// <inheritdoc/>
    public string ResolveLayer(string name)
    {
        if (_aliases.TryGetValue(name, out var n)) return n;
        if (Layers.Any(l => l.Name == name)) return name;
        var all = Layers.Select(l => l.Name).Concat(_aliases.Keys);
        throw new BadInputException($"Layer '{name}' does not exist in {Name}; nearest: {string.Join(", ", NameSuggestions.Nearest(name, all))}.");
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> Forward(Tensor images, IReadOnlyCollection<string> layers)
    {
        var resolved = layers.ToDictionary(l => l, ResolveLayer);
        _wanted = resolved.Values.ToHashSet();
        _taps = new Dictionary<string, Tensor>();
        try { Run(Input.Preprocess(images.to(parameters().First().dtype))); }
        catch (Done) { }
        finally { _wanted = null; }
        var taps = _taps;
        _taps = null;
        return resolved.ToDictionary(kv => kv.Key, kv => taps[kv.Value]);
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor images) => Forward(images, [OutputLayer])[OutputLayer];

    /// <summary>Entries of a state_dict that this network leaves out on purpose.</summary>
    protected virtual bool Ignored(string key) => false;

    /// <summary>Copies a torchvision state_dict in: every parameter and buffer must be there with its shape.</summary>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        using var noGrad = no_grad();
        var mine = named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(named_buffers()).ToList();
        foreach (var (name, p) in mine)
        {
            if (!stateDict.TryGetValue(name, out var t)) throw new BadInputException($"The weights lack '{name}' for {Name}.");
            if (!t.shape.SequenceEqual(p.shape)) throw new BadInputException($"'{name}' has shape [{string.Join(",", t.shape)}]; {Name} needs [{string.Join(",", p.shape)}].");
            // A float16 file's tensor converted for a float32 network is a copy of its own, freed at once.
            using var converted = t.dtype == p.dtype ? null : t.to(p.dtype);
            p.copy_(converted ?? t);
        }
        var extra = stateDict.Keys.Except(mine.Select(e => e.name)).Where(k => !Ignored(k)).ToList();
        if (extra.Count > 0) throw new BadInputException($"The weights have entries {Name} does not: {string.Join(", ", extra.Take(5))}.");
    }

    /// <inheritdoc/>
    public void To(Device device, ScalarType? floatType = null)
    {
        this.to(device);
        if (floatType is { } t) this.to(t);
    }
}
