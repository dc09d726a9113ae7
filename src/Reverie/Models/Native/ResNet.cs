using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>torchvision's bottleneck block (ResNet-50): 1×1, 3×3 (with the stride), 1×1 convolutions, each with batch norm, and a projection when the shape changes.</summary>
internal sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv1, conv2, conv3;
    readonly BatchNorm2d bn1, bn2, bn3;
    readonly Sequential? downsample;

    /// <summary>A block from <paramref name="inputs"/> channels to 4 × <paramref name="width"/>.</summary>
    public Bottleneck(int inputs, int width, int stride) : base(nameof(Bottleneck))
    {
        conv1 = nn.Conv2d(inputs, width, 1, bias: false);
        bn1 = nn.BatchNorm2d(width);
        conv2 = nn.Conv2d(width, width, 3, stride: stride, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(width);
        conv3 = nn.Conv2d(width, width * 4, 1, bias: false);
        bn3 = nn.BatchNorm2d(width * 4);
        if (stride != 1 || inputs != width * 4)
            downsample = nn.Sequential(("0", (nn.Module<Tensor, Tensor>)nn.Conv2d(inputs, width * 4, 1, stride: stride, bias: false)), ("1", nn.BatchNorm2d(width * 4)));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var y = ReluGradients.Relu(bn1.call(conv1.call(x)));
        y = ReluGradients.Relu(bn2.call(conv2.call(y)));
        y = bn3.call(conv3.call(y));
        return ReluGradients.Relu(y + (downsample?.call(x) ?? x));
    }
}

/// <summary>
/// torchvision's ResNet-50: layer names conv1, bn1, relu, maxpool, layer1 … layer4 and their
/// blocks (layer3.1), avgpool and fc, as torchvision's module paths.
/// </summary>
internal sealed class ResNet : NativeNetwork
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly Linear fc;
    readonly Sequential[] stages;

    ResNet(string name, int[] blocks) : base(name)
    {
        conv1 = nn.Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = nn.BatchNorm2d(64);
        int inputs = 64;
        Sequential Stage(int width, int count, int stride)
        {
            var list = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int i = 0; i < count; i++)
            {
                list.Add(($"{i}", new Bottleneck(inputs, width, i == 0 ? stride : 1)));
                inputs = width * 4;
            }
            return nn.Sequential(list);
        }
        layer1 = Stage(64, blocks[0], 1);
        layer2 = Stage(128, blocks[1], 2);
        layer3 = Stage(256, blocks[2], 2);
        layer4 = Stage(512, blocks[3], 2);
        fc = nn.Linear(2048, 1000);
        stages = [layer1, layer2, layer3, layer4];
        RegisterComponents();
        eval();
    }

    /// <summary>ResNet-50 with untrained weights.</summary>
    public static ResNet ResNet50(string? name = null) => new(name ?? "resnet50", [3, 4, 6, 3]);

    /// <inheritdoc/>
    public override string OutputLayer => "fc";

    /// <inheritdoc/>
    protected override Tensor Run(Tensor x)
    {
        x = Tap("conv1", conv1.call(x));
        x = Tap("bn1", bn1.call(x));
        x = Tap("relu", ReluGradients.Relu(x));
        x = Tap("maxpool", nn.functional.max_pool2d(x, 3, 2, 1));
        for (int s = 0; s < stages.Length; s++)
        {
            var blocks = stages[s].children().Cast<nn.Module<Tensor, Tensor>>().ToList();
            for (int b = 0; b < blocks.Count; b++) x = Tap($"layer{s + 1}.{b}", blocks[b].call(x));
            x = Tap($"layer{s + 1}", x);
        }
        x = Tap("avgpool", x.mean([2, 3], keepdim: true));
        return Tap("fc", fc.call(x.flatten(1)));
    }
}
