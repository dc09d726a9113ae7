using System.Text.Json.Serialization;
using Reverie.Models;
using Reverie.Models.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>One layer of a <see cref="ConvNetSpec"/>.</summary>
internal sealed record ConvNetLayer
{
    /// <summary><c>conv</c> (convolution, optional batch norm, ReLU), <c>pool</c> (2×2 max pool),
    /// <c>gap</c> (global average pool), <c>flatten</c>, <c>dropout</c> or <c>dense</c>
    /// (fully connected; ReLU unless it is the last layer).</summary>
    public required string Type { get; init; }
    /// <summary>Tap name; conv, pool and dense layers need one.</summary>
    public string? Name { get; init; }
    /// <summary>Output channels (conv) or units (dense).</summary>
    public int Out { get; init; }
    /// <summary>Kernel size of a convolution.</summary>
    public int Kernel { get; init; } = 3;
    /// <summary>Stride of a convolution.</summary>
    public int Stride { get; init; } = 1;
    /// <summary>Batch norm after a convolution.</summary>
    public bool BatchNorm { get; init; } = true;
    /// <summary>Drop probability of a dropout layer.</summary>
    public double P { get; init; }
}

/// <summary>
/// The architecture of a small classifier Reverie trains itself: an input size and a list of layers.
/// Stored as JSON in every checkpoint, so a checkpoint rebuilds its own network.
/// </summary>
internal sealed record ConvNetSpec
{
    /// <summary>Input channels: 1 (gray) or 3 (RGB).</summary>
    public int InputChannels { get; init; } = 3;
    /// <summary>Native input height.</summary>
    public int InputHeight { get; init; }
    /// <summary>Native input width.</summary>
    public int InputWidth { get; init; }
    /// <summary>The layers, in order; the last is the dense layer that gives the logits.</summary>
    public required IReadOnlyList<ConvNetLayer> Layers { get; init; }

    /// <summary>Name of the last dense layer (the logits).</summary>
    [JsonIgnore]
    public string LogitsLayer => Layers[^1].Name ?? "logits";

    /// <summary>Number of classes (units of the last layer).</summary>
    [JsonIgnore]
    public int Classes => Layers[^1].Out;

    /// <summary>The same architecture with a new last layer of <paramref name="classes"/> units.</summary>
    public ConvNetSpec WithClasses(int classes) => this with { Layers = [.. Layers.Take(Layers.Count - 1), Layers[^1] with { Out = classes }] };

    /// <summary>
    /// The feature part (everything up to the last layer that is not dense or dropout) with a new top:
    /// one dense softmax layer of <paramref name="classes"/> units named as the old last layer. For a
    /// network whose only dense layer is its last, this is <see cref="WithClasses"/> without the dropout before it.
    /// </summary>
    public ConvNetSpec WithNewTop(int classes)
    {
        int last = Layers.Count - 1;
        while (last >= 0 && Layers[last].Type is "dense" or "dropout") last--;
        if (last < 0) return WithClasses(classes); // all dense (an MLP): replace only the last layer
        return this with { Layers = [.. Layers.Take(last + 1), new ConvNetLayer { Type = "dense", Name = LogitsLayer, Out = classes }] };
    }

    /// <summary>Checks the spec: known layer types, names where needed, unique names, a dense last layer.</summary>
    public void Validate()
    {
        if (InputChannels is not (1 or 3)) throw new BadInputException($"A network's input must have 1 or 3 channels; got {InputChannels}.");
        if (InputHeight is < 8 or > 4096 || InputWidth is < 8 or > 4096) throw new BadInputException($"A network's input must be 8 to 4096 pixels a side; got {InputWidth}x{InputHeight}.");
        if (Layers.Count == 0 || Layers[^1].Type != "dense") throw new BadInputException("A network's last layer must be a dense layer (the logits).");
        var names = new HashSet<string>();
        foreach (var l in Layers)
        {
            if (l.Type is not ("conv" or "pool" or "gap" or "flatten" or "dropout" or "dense"))
                throw new BadInputException($"Unknown layer type '{l.Type}'; known: conv, pool, gap, flatten, dropout, dense.");
            if (l.Type is "conv" or "dense" or "pool" && string.IsNullOrEmpty(l.Name)) throw new BadInputException($"A {l.Type} layer needs a name.");
            if (l.Name is { } n && !names.Add(n)) throw new BadInputException($"Two layers are named '{n}'.");
            if (l.Type is "conv" or "dense" && l.Out is < 1 or > 65536) throw new BadInputException($"Layer '{l.Name}' must have 1 to 65536 outputs; got {l.Out}.");
            if (l.Type == "conv" && (l.Kernel is < 1 or > 15 || l.Stride is < 1 or > 8)) throw new BadInputException($"Layer '{l.Name}' has kernel {l.Kernel} and stride {l.Stride}; kernels go from 1 to 15 and strides from 1 to 8.");
            if (l.Type == "dropout" && l.P is < 0 or >= 1) throw new BadInputException($"Dropout must be from 0 to 1; got {l.P}.");
        }
    }
}

/// <summary>
/// A small classifier built from a <see cref="ConvNetSpec"/>: the network behind Reverie's own
/// checkpoints and embedded models. Each conv, pool and dense layer is a tap (conv taps are after
/// the ReLU); the last dense layer holds the logits. Submodule names are the spec's layer names,
/// so its state_dict reads <c>conv1.conv.weight</c>, <c>conv1.norm.running_mean</c>, <c>logits.weight</c>.
/// </summary>
internal sealed class ConvNet : NativeNetwork
{
    readonly List<(ConvNetLayer Spec, nn.Module<Tensor, Tensor>? Module)> _stack = new();

    /// <summary>The architecture.</summary>
    public ConvNetSpec Spec { get; }

    /// <summary>The layer dreams use when none is given (set from the checkpoint).</summary>
    public string? DreamLayer { get; init; }

    sealed class ConvBlock : nn.Module<Tensor, Tensor>
    {
        readonly Conv2d conv;
        readonly BatchNorm2d? norm;

        public ConvBlock(int cin, ConvNetLayer l) : base(nameof(ConvBlock))
        {
            conv = nn.Conv2d(cin, l.Out, l.Kernel, stride: l.Stride, padding: l.Kernel / 2, bias: !l.BatchNorm);
            if (l.BatchNorm) norm = nn.BatchNorm2d(l.Out);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var y = conv.call(x);
            if (norm is not null) y = norm.call(y);
            return ReluGradients.Relu(y);
        }
    }

    /// <summary>
    /// Dropout drawing its masks from a generator of its own, not torch's global one: a run is the
    /// same whatever other code (another test, another job in the process) draws meanwhile.
    /// </summary>
    sealed class SeededDropout(double p) : nn.Module<Tensor, Tensor>(nameof(SeededDropout))
    {
        public Generator Generator { get; } = new(0);

        public override Tensor forward(Tensor x)
        {
            if (!training || p == 0) return x;
            var keep = rand(x.shape, generator: Generator, device: x.device).ge_(S(p)).to(x.dtype);
            return x * keep / S((1 - p));
        }
    }

    /// <summary>Seeds every dropout layer's generator (layer i with <paramref name="seed"/> + i), e.g. once an epoch.</summary>
    public void SeedDropout(long seed)
    {
        int i = 0;
        foreach (var (_, m) in _stack)
            if (m is SeededDropout d) d.Generator.manual_seed(seed + i++);
    }

    /// <summary>Builds an untrained network (PyTorch's default initialization, seeded by <paramref name="seed"/>).</summary>
    public ConvNet(string name, ConvNetSpec spec, InputSpec input, IReadOnlyList<string>? labels, int seed = 0) : base(name)
    {
        spec.Validate();
        if (labels is not null && labels.Count != spec.Classes) throw new BadInputException($"The network has {spec.Classes} outputs but {labels.Count} labels.");
        Spec = spec;
        Input = input with { Width = spec.InputWidth, Height = spec.InputHeight };
        Labels = labels;
        int c = spec.InputChannels, h = spec.InputHeight, w = spec.InputWidth;
        bool flat = false;
        for (int i = 0; i < spec.Layers.Count; i++)
        {
            var l = spec.Layers[i];
            nn.Module<Tensor, Tensor>? m = null;
            switch (l.Type)
            {
                case "conv":
                    if (flat) throw new BadInputException($"Layer '{l.Name}' is a convolution after the features were flattened.");
                    m = new ConvBlock(c, l);
                    c = l.Out; h = (h + l.Stride - 1) / l.Stride; w = (w + l.Stride - 1) / l.Stride;
                    break;
                case "pool":
                    if (flat) throw new BadInputException($"Layer '{l.Name}' pools after the features were flattened.");
                    m = nn.MaxPool2d(2, 2); h /= 2; w /= 2;
                    if (h < 1 || w < 1) throw new BadInputException($"Layer '{l.Name}' pools a map that is already 1 pixel wide.");
                    break;
                case "gap":
                    m = nn.AdaptiveAvgPool2d(1); h = w = 1;
                    break;
                case "flatten": flat = true; break;
                case "dropout": m = new SeededDropout(l.P); break;
                case "dense":
                    if (!flat && (h != 1 || w != 1)) throw new BadInputException($"Dense layer '{l.Name}' needs a 'flatten' or 'gap' layer before it.");
                    m = nn.Linear(flat ? c * h * w : c, l.Out);
                    c = l.Out; h = w = 1; flat = true;
                    break;
            }
            if (m is not null && l.Name is { } n) register_module(n, m);
            else if (m is not null) register_module($"_{l.Type}{i}", m);
            _stack.Add((l, m));
        }
        Optimization.Init.Reset(this, seed);
        eval();
    }

    /// <inheritdoc/>
    public override string OutputLayer => Spec.LogitsLayer;

    /// <inheritdoc/>
    protected override Tensor Run(Tensor x)
    {
        for (int i = 0; i < _stack.Count; i++)
        {
            var (l, m) = _stack[i];
            x = l.Type switch
            {
                "flatten" => x.flatten(1),
                "gap" => m!.call(x).flatten(1),
                "dense" when i < _stack.Count - 1 => ReluGradients.Relu(m!.call(x)),
                _ => m!.call(x),
            };
            if (l.Name is { } n && l.Type != "dropout") x = Tap(n, x);
        }
        return x;
    }

    /// <summary>Puts every module before the <paramref name="firstTrainable"/>-th layer with weights into evaluation mode (fixed batch-norm statistics, no dropout).</summary>
    public void FreezeModesBefore(int firstTrainable)
    {
        int named = 0;
        foreach (var (l, m) in _stack)
        {
            if (l.Type is "conv" or "dense" && named++ == firstTrainable) break;
            m?.eval();
        }
    }

    /// <summary>Names of the layers in order, with their trainable modules (conv, dense).</summary>
    public IEnumerable<(string Name, nn.Module Module)> NamedLayers =>
        _stack.Where(s => s.Spec.Type is "conv" or "dense").Select(s => (s.Spec.Name!, (nn.Module)s.Module!));
}
