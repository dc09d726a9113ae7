using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>
/// torchvision's MobileNet-v2: features.0 (a stride-2 3×3 convolution), features.1 … features.17
/// (inverted residual blocks: 1×1 expansion, 3×3 depthwise, 1×1 linear projection, batch norm and
/// ReLU6, with a residual when the shape allows), features.18 (1×1 to 1280), then the classifier.
/// Layer names are torchvision's module paths (features.7, features.7.conv …).
/// </summary>
internal sealed class MobileNetV2 : NativeNetwork
{
    // (expansion t, channels c, repeats n, stride s), as in the paper and torchvision.
    static readonly (int T, int C, int N, int S)[] Settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    readonly Sequential features, classifier;
    readonly List<(nn.Module<Tensor, Tensor> Block, bool Residual)> blocks = new();

    static Sequential ConvBnRelu6(int cin, int cout, int k, int stride, int groups) => nn.Sequential(
        ("0", (nn.Module<Tensor, Tensor>)nn.Conv2d(cin, cout, k, stride: stride, padding: (k - 1) / 2, groups: groups, bias: false)),
        ("1", nn.BatchNorm2d(cout)),
        ("2", new ReluGradients.Module(six: true)));

    sealed class InvertedResidual : nn.Module<Tensor, Tensor>
    {
        readonly Sequential conv;

        public InvertedResidual(int cin, int cout, int stride, int expand) : base(nameof(InvertedResidual))
        {
            int hidden = cin * expand;
            var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
            if (expand != 1) layers.Add(($"{layers.Count}", ConvBnRelu6(cin, hidden, 1, 1, 1)));
            layers.Add(($"{layers.Count}", ConvBnRelu6(hidden, hidden, 3, stride, hidden)));
            layers.Add(($"{layers.Count}", nn.Conv2d(hidden, cout, 1, bias: false)));
            layers.Add(($"{layers.Count}", nn.BatchNorm2d(cout)));
            conv = nn.Sequential(layers);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => conv.call(x);
    }

    MobileNetV2(string name) : base(name)
    {
        var list = new List<(string, nn.Module<Tensor, Tensor>)> { ("0", ConvBnRelu6(3, 32, 3, 2, 1)) };
        blocks.Add((list[0].Item2, false));
        int cin = 32;
        foreach (var (t, c, n, s) in Settings)
            for (int i = 0; i < n; i++)
            {
                int stride = i == 0 ? s : 1;
                var block = new InvertedResidual(cin, c, stride, t);
                list.Add(($"{list.Count}", block));
                blocks.Add((block, stride == 1 && cin == c));
                cin = c;
            }
        list.Add(($"{list.Count}", ConvBnRelu6(cin, 1280, 1, 1, 1)));
        blocks.Add((list[^1].Item2, false));
        features = nn.Sequential(list);
        classifier = nn.Sequential(("0", (nn.Module<Tensor, Tensor>)nn.Dropout(0.2)), ("1", nn.Linear(1280, 1000)));
        RegisterComponents();
        eval();
    }

    /// <summary>MobileNet-v2 with untrained weights.</summary>
    public static MobileNetV2 Create(string? name = null) => new(name ?? "mobilenet_v2");

    /// <inheritdoc/>
    public override string OutputLayer => "classifier.1";

    /// <inheritdoc/>
    protected override Tensor Run(Tensor x)
    {
        for (int i = 0; i < blocks.Count; i++)
        {
            var (block, residual) = blocks[i];
            var y = block.call(x);
            x = Tap($"features.{i}", residual ? x + y : y);
        }
        x = Tap("pool", x.mean([2, 3]));
        return Tap("classifier.1", classifier.call(x));
    }
}
