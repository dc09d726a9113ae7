using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>
/// torchvision's VGG-16 and VGG-19 (without batch norm) and AlexNet: layer names are
/// torchvision's module paths (features.0 …, classifier.0 …); VGG also answers to neural-style's
/// names (conv1_1, relu1_1, pool1 … relu5_4, fc6, fc7, fc8). Any input from 32 px (adaptive
/// pooling before the classifier, as torchvision does).
/// </summary>
internal sealed class Vgg : NativeNetwork
{
    static readonly int[] Vgg16 = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
    static readonly int[] Vgg19 = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0];

    readonly Sequential features, classifier;
    readonly AdaptiveAvgPool2d avgpool;
    readonly List<nn.Module<Tensor, Tensor>> featureList, classifierList;

    Vgg(string name, List<nn.Module<Tensor, Tensor>> feats, int pooled, List<nn.Module<Tensor, Tensor>> head) : base(name)
    {
        featureList = feats;
        classifierList = head;
        features = nn.Sequential(feats.Select((m, i) => ($"{i}", m)));
        avgpool = nn.AdaptiveAvgPool2d([pooled, pooled]);
        classifier = nn.Sequential(head.Select((m, i) => ($"{i}", m)));
        RegisterComponents();
        eval();
    }

    /// <summary>VGG-<paramref name="depth"/> (16 or 19) with untrained weights.</summary>
    public static Vgg Create(int depth, string? name = null)
    {
        var config = depth switch { 16 => Vgg16, 19 => Vgg19, _ => throw new BadInputException($"VGG depth must be 16 or 19; got {depth}.") };
        var modules = new List<nn.Module<Tensor, Tensor>>();
        var aliases = new List<(string, string)>();
        int channels = 3, block = 1, k = 1;
        foreach (int c in config)
        {
            if (c == 0)
            {
                aliases.Add(($"pool{block}", $"features.{modules.Count}"));
                modules.Add(nn.MaxPool2d(2, 2));
                block++; k = 1;
                continue;
            }
            aliases.Add(($"conv{block}_{k}", $"features.{modules.Count}"));
            modules.Add(nn.Conv2d(channels, c, 3, padding: 1));
            aliases.Add(($"relu{block}_{k}", $"features.{modules.Count}"));
            modules.Add(new ReluGradients.Module());
            channels = c; k++;
        }
        var net = new Vgg(name ?? $"vgg{depth}", modules, 7, Head(512 * 7 * 7));
        foreach (var (a, l) in aliases) net.Alias(a, l);
        foreach (var (a, l) in new[] { ("fc6", "classifier.0"), ("relu6", "classifier.1"), ("fc7", "classifier.3"), ("relu7", "classifier.4"), ("fc8", "classifier.6") }) net.Alias(a, l);
        return net;
    }

    /// <summary>torchvision's AlexNet (the "one weird trick" variant torchvision ships) with untrained weights.</summary>
    public static Vgg AlexNet(string? name = null)
    {
        var f = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Conv2d(3, 64, 11, stride: 4, padding: 2), new ReluGradients.Module(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding: 2), new ReluGradients.Module(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding: 1), new ReluGradients.Module(),
            nn.Conv2d(384, 256, 3, padding: 1), new ReluGradients.Module(),
            nn.Conv2d(256, 256, 3, padding: 1), new ReluGradients.Module(), nn.MaxPool2d(3, 2),
        };
        var head = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), new ReluGradients.Module(), nn.Dropout(0.5), nn.Linear(4096, 4096), new ReluGradients.Module(), nn.Linear(4096, 1000),
        };
        var net = new Vgg(name ?? "alexnet", f, 6, head);
        string[] convs = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5"];
        for (int i = 0; i < convs.Length; i++) net.Alias(convs[i], $"features.{i}");
        return net;
    }

    static List<nn.Module<Tensor, Tensor>> Head(int inputs) =>
        [nn.Linear(inputs, 4096), new ReluGradients.Module(), nn.Dropout(0.5), nn.Linear(4096, 4096), new ReluGradients.Module(), nn.Dropout(0.5), nn.Linear(4096, 1000)];

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

    /// <inheritdoc/>
    public override string OutputLayer => $"classifier.{classifierList.Count - 1}";

    /// <inheritdoc/>
    protected override Tensor Run(Tensor x)
    {
        for (int i = 0; i < featureList.Count; i++) x = Tap($"features.{i}", featureList[i].call(x));
        x = avgpool.call(x).flatten(1);
        for (int i = 0; i < classifierList.Count; i++) x = Tap($"classifier.{i}", classifierList[i].call(x));
        return x;
    }
}
