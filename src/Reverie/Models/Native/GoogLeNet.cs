using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>torchvision's BasicConv2d: convolution without bias, batch norm (eps 0.001), ReLU.</summary>
sealed class BasicConv2d : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv;
    readonly BatchNorm2d bn;

    public BasicConv2d(int cin, int cout, int k, int stride = 1, int padding = 0) : this(cin, cout, (k, k), (padding, padding), stride) { }

    public BasicConv2d(int cin, int cout, (long, long) kernel, (long, long) padding, int stride = 1) : base(nameof(BasicConv2d))
    {
        conv = nn.Conv2d(cin, cout, kernel, stride: (stride, stride), padding: padding, bias: false);
        bn = nn.BatchNorm2d(cout, eps: 0.001);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => ReluGradients.Relu(bn.call(conv.call(x)));
}

/// <summary>torchvision's Inception block: 1×1; 1×1→3×3; 1×1→3×3 (torchvision's stand-in for 5×5); 3×3 max pool→1×1; concatenated.</summary>
sealed class InceptionBlock : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d branch1;
    readonly Sequential branch2, branch3, branch4;

    public InceptionBlock(int cin, int c1, int c3r, int c3, int c5r, int c5, int pool) : base(nameof(InceptionBlock))
    {
        branch1 = new BasicConv2d(cin, c1, 1);
        branch2 = nn.Sequential(("0", (nn.Module<Tensor, Tensor>)new BasicConv2d(cin, c3r, 1)), ("1", new BasicConv2d(c3r, c3, 3, padding: 1)));
        branch3 = nn.Sequential(("0", (nn.Module<Tensor, Tensor>)new BasicConv2d(cin, c5r, 1)), ("1", new BasicConv2d(c5r, c5, 3, padding: 1)));
        branch4 = nn.Sequential(("0", (nn.Module<Tensor, Tensor>)nn.Identity()), ("1", new BasicConv2d(cin, pool, 1)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var pooled = nn.functional.max_pool2d(x, 3, 1, 1, ceil_mode: true);
        return cat([branch1.call(x), branch2.call(x), branch3.call(x), branch4.call(pooled)], 1);
    }
}

/// <summary>
/// torchvision's GoogLeNet (Inception v1, with batch norm). Layer names are torchvision's paths
/// (conv1 … inception4c … fc) with Lucid's (mixed4c) and the Caffe model's (inception_4c/output)
/// names as aliases, so DeepDream's defaults work on it. <see cref="TransformInput"/> re-maps
/// ImageNet-normalized input the way torchvision's pretrained weights expect (on by default;
/// the auxiliary classifiers in those files are ignored).
/// </summary>
internal sealed class GoogLeNet : NativeNetwork
{
    readonly BasicConv2d conv1, conv2, conv3;
    readonly InceptionBlock inception3a, inception3b, inception4a, inception4b, inception4c, inception4d, inception4e, inception5a, inception5b;
    readonly Linear fc;

    /// <summary>Apply torchvision's transform_input (what its pretrained weights were trained with).</summary>
    public bool TransformInput { get; init; } = true;

    GoogLeNet(string name) : base(name)
    {
        conv1 = new BasicConv2d(3, 64, 7, stride: 2, padding: 3);
        conv2 = new BasicConv2d(64, 64, 1);
        conv3 = new BasicConv2d(64, 192, 3, padding: 1);
        inception3a = new InceptionBlock(192, 64, 96, 128, 16, 32, 32);
        inception3b = new InceptionBlock(256, 128, 128, 192, 32, 96, 64);
        inception4a = new InceptionBlock(480, 192, 96, 208, 16, 48, 64);
        inception4b = new InceptionBlock(512, 160, 112, 224, 24, 64, 64);
        inception4c = new InceptionBlock(512, 128, 128, 256, 24, 64, 64);
        inception4d = new InceptionBlock(512, 112, 144, 288, 32, 64, 64);
        inception4e = new InceptionBlock(528, 256, 160, 320, 32, 128, 128);
        inception5a = new InceptionBlock(832, 256, 160, 320, 32, 128, 128);
        inception5b = new InceptionBlock(832, 384, 192, 384, 48, 128, 128);
        fc = nn.Linear(1024, 1000);
        RegisterComponents();
        eval();
        foreach (var b in new[] { "3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b" })
        {
            Alias($"mixed{b}", $"inception{b}");
            Alias($"inception_{b}/output", $"inception{b}");
        }
    }

    /// <summary>GoogLeNet with untrained weights.</summary>
    public static GoogLeNet Create(string? name = null, bool transformInput = true) => new(name ?? "googlenet") { TransformInput = transformInput };

    /// <summary>Whether a state_dict is torchvision's GoogLeNet.</summary>
    public static bool Matches(IReadOnlyDictionary<string, Tensor> w) => w.ContainsKey("inception5b.branch4.1.conv.weight") && w.ContainsKey("fc.weight");

    /// <summary>torchvision's files carry the auxiliary classifiers (aux1, aux2), which inference does not use.</summary>
    protected override bool Ignored(string key) => key.StartsWith("aux1.", StringComparison.Ordinal) || key.StartsWith("aux2.", StringComparison.Ordinal);

    /// <inheritdoc/>
    public override string OutputLayer => "fc";

    /// <inheritdoc/>
    protected override Tensor Run(Tensor x)
    {
        if (TransformInput) x = TransformToHalfRange(x);
        x = Tap("conv1", conv1.call(x));
        x = Tap("maxpool1", nn.functional.max_pool2d(x, 3, 2, ceil_mode: true));
        x = Tap("conv2", conv2.call(x));
        x = Tap("conv3", conv3.call(x));
        x = Tap("maxpool2", nn.functional.max_pool2d(x, 3, 2, ceil_mode: true));
        x = Tap("inception3a", inception3a.call(x));
        x = Tap("inception3b", inception3b.call(x));
        x = Tap("maxpool3", nn.functional.max_pool2d(x, 3, 2, ceil_mode: true));
        x = Tap("inception4a", inception4a.call(x));
        x = Tap("inception4b", inception4b.call(x));
        x = Tap("inception4c", inception4c.call(x));
        x = Tap("inception4d", inception4d.call(x));
        x = Tap("inception4e", inception4e.call(x));
        x = Tap("maxpool4", nn.functional.max_pool2d(x, 2, 2, ceil_mode: true));
        x = Tap("inception5a", inception5a.call(x));
        x = Tap("inception5b", inception5b.call(x));
        x = Tap("avgpool", x.mean([2, 3], keepdim: true));
        return Tap("fc", fc.call(x.flatten(1)));
    }
}
