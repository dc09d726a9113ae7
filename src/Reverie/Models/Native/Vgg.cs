using Reverie.Models.Registry;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>
/// torchvision's VGG-16 and VGG-19 (without batch norm) in TorchSharp, with torchvision's module
/// paths as layer names (features.0 … features.36, classifier.0 … classifier.6) and
/// neural-style's names as aliases (conv1_1, relu1_1, pool1 … relu5_4, fc6, fc7, fc8). Input: RGB
/// in 0..1, normalized with ImageNet's mean and std inside; any size from 32 px (adaptive
/// pooling before the classifier, as torchvision does).
/// </summary>
public sealed class Vgg : nn.Module<Tensor, Tensor>, INetwork
{
    static readonly int[] Vgg16 = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
    static readonly int[] Vgg19 = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0];

    readonly Sequential features, classifier;
    readonly AdaptiveAvgPool2d avgpool;
    readonly List<(string Name, nn.Module<Tensor, Tensor> Module)> featureList = new(), classifierList = new();
    readonly Dictionary<string, string> aliases = new(StringComparer.Ordinal);
    readonly List<LayerInfo> layers = new();

    /// <summary>Builds VGG-<paramref name="depth"/> (16 or 19) with untrained weights.</summary>
    public Vgg(int depth, string? name = null, IReadOnlyList<string>? labels = null) : base($"vgg{depth}")
    {
        var config = depth switch { 16 => Vgg16, 19 => Vgg19, _ => throw new BadInputException($"VGG depth must be 16 or 19; got {depth}.") };
        Name = name ?? $"vgg{depth}";
        Labels = labels ?? Registry.Labels.ImageNet;
        var modules = new List<nn.Module<Tensor, Tensor>>();
        int channels = 3, block = 1, k = 1, side = 224;
        foreach (int c in config)
        {
            string idx = $"features.{modules.Count}";
            if (c == 0)
            {
                modules.Add(nn.MaxPool2d(2, 2));
                side /= 2;
                Alias($"pool{block}", idx, "MaxPool", channels, side);
                block++; k = 1;
                continue;
            }
            modules.Add(nn.Conv2d(channels, c, 3, padding: 1));
            Alias($"conv{block}_{k}", idx, "Conv", c, side);
            modules.Add(nn.ReLU());
            Alias($"relu{block}_{k}", $"features.{modules.Count - 1}", "Relu", c, side);
            channels = c; k++;
        }
        features = nn.Sequential(modules.Select((m, i) => ($"{i}", (nn.Module<Tensor, Tensor>)m)));
        for (int i = 0; i < modules.Count; i++) featureList.Add(($"features.{i}", modules[i]));
        avgpool = nn.AdaptiveAvgPool2d([7, 7]);
        var head = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000),
        };
        classifier = nn.Sequential(head.Select((m, i) => ($"{i}", m)));
        for (int i = 0; i < head.Count; i++) classifierList.Add(($"classifier.{i}", head[i]));
        string[] headNames = ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"];
        string[] headOps = ["Gemm", "Relu", "Dropout", "Gemm", "Relu", "Dropout", "Gemm"];
        for (int i = 0; i < head.Count; i++) layers.Add(new LayerInfo($"classifier.{i}", [headNames[i]], headOps[i], [1, i == 6 ? 1000 : 4096]));
        foreach (var (n, a) in new[] { ("fc6", "classifier.0"), ("relu6", "classifier.1"), ("fc7", "classifier.3"), ("relu7", "classifier.4"), ("fc8", "classifier.6") }) aliases[n] = a;
        RegisterComponents();
        eval();
    }

    void Alias(string alias, string name, string op, int channels, int side)
    {
        aliases[alias] = name;
        layers.Add(new LayerInfo(name, [alias], op, [1, channels, side, side]));
    }

    /// <summary>VGG-16 or VGG-19, as the number of convolutions in a state_dict says.</summary>
    public static int DepthOf(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        int convs = stateDict.Count(kv => kv.Key.StartsWith("features.", StringComparison.Ordinal) && kv.Key.EndsWith(".weight", StringComparison.Ordinal) && kv.Value.dim() == 4);
        return convs switch
        {
            13 => 16,
            16 => 19,
            _ => throw new BadInputException($"These weights are not torchvision's VGG-16 or VGG-19 ({convs} convolutions in 'features')."),
        };
    }

    /// <summary>Copies a torchvision state_dict into the network; every parameter must be present with its shape.</summary>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        using var noGrad = no_grad();
        var expected = named_parameters().ToList();
        foreach (var (name, p) in expected)
        {
            if (!stateDict.TryGetValue(name, out var t)) throw new BadInputException($"The weights lack '{name}'.");
            if (!t.shape.SequenceEqual(p.shape)) throw new BadInputException($"'{name}' has shape [{string.Join(",", t.shape)}]; {Name} needs [{string.Join(",", p.shape)}].");
            p.copy_(t.to(p.dtype));
        }
        var extra = stateDict.Keys.Except(expected.Select(e => e.name)).ToList();
        if (extra.Count > 0) throw new BadInputException($"The weights have entries {Name} does not: {string.Join(", ", extra.Take(5))}.");
    }

    /// <inheritdoc/>
    public string Name { get; }
    /// <inheritdoc/>
    public InputSpec Input { get; } = new() { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
    /// <inheritdoc/>
    public IReadOnlyList<string>? Labels { get; }
    /// <inheritdoc/>
    public string OutputLayer => "classifier.6";
    /// <inheritdoc/>
    public bool OutputIsProbability => false;
    /// <inheritdoc/>
    public string? LogitsLayer => "classifier.6";
    /// <inheritdoc/>
    public IReadOnlyList<LayerInfo> Layers => layers;
    /// <inheritdoc/>
    public Device Device => features.parameters().First().device;

    /// <inheritdoc/>
    public string ResolveLayer(string name)
    {
        if (featureList.Any(f => f.Name == name) || classifierList.Any(c => c.Name == name)) return name;
        if (aliases.TryGetValue(name, out var n)) return n;
        var all = featureList.Select(f => f.Name).Concat(classifierList.Select(c => c.Name)).Concat(aliases.Keys);
        throw new BadInputException($"Layer '{name}' does not exist in {Name}; nearest: {string.Join(", ", NameSuggestions.Nearest(name, all))}.");
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> Forward(Tensor images, IReadOnlyCollection<string> wanted)
    {
        var names = wanted.Select(ResolveLayer).ToHashSet();
        var result = new Dictionary<string, Tensor>();
        var x = Input.Preprocess(images.to(features.parameters().First().dtype));
        int lastFeature = featureList.FindLastIndex(f => names.Contains(f.Name));
        bool needHead = classifierList.Any(c => names.Contains(c.Name));
        int stop = needHead ? featureList.Count - 1 : lastFeature;
        for (int i = 0; i <= stop; i++)
        {
            x = featureList[i].Module.call(x);
            if (names.Contains(featureList[i].Name)) result[featureList[i].Name] = x;
        }
        if (needHead)
        {
            x = avgpool.call(x).flatten(1);
            int lastHead = classifierList.FindLastIndex(c => names.Contains(c.Name));
            for (int i = 0; i <= lastHead; i++)
            {
                x = classifierList[i].Module.call(x);
                if (names.Contains(classifierList[i].Name)) result[classifierList[i].Name] = x;
            }
        }
        foreach (var w in wanted) if (!result.ContainsKey(w)) result[w] = result[ResolveLayer(w)];
        return result;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor images) => Forward(images, [OutputLayer])[OutputLayer];

    /// <inheritdoc/>
    public void To(Device device, ScalarType? floatType = null)
    {
        this.to(device);
        if (floatType is { } t) this.to(t);
    }
}
