using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Models.Native;

/// <summary>Inception-v3's 35×35 block (torchvision's InceptionA): 1×1; 1×1→5×5; 1×1→3×3→3×3; 3×3 average pool→1×1.</summary>
sealed class InceptionA : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool;

    public InceptionA(int cin, int poolFeatures) : base(nameof(InceptionA))
    {
        branch1x1 = new BasicConv2d(cin, 64, 1);
        branch5x5_1 = new BasicConv2d(cin, 48, 1);
        branch5x5_2 = new BasicConv2d(48, 64, 5, padding: 2);
        branch3x3dbl_1 = new BasicConv2d(cin, 64, 1);
        branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
        branch3x3dbl_3 = new BasicConv2d(96, 96, 3, padding: 1);
        branch_pool = new BasicConv2d(cin, poolFeatures, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => cat(
    [
        branch1x1.call(x),
        branch5x5_2.call(branch5x5_1.call(x)),
        branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
        branch_pool.call(nn.functional.avg_pool2d(x, 3, 1, 1)),
    ], 1);
}

/// <summary>Inception-v3's grid reduction 35→17 (InceptionB): 3×3 stride 2; 1×1→3×3→3×3 stride 2; 3×3 max pool stride 2.</summary>
sealed class InceptionB : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;

    public InceptionB(int cin) : base(nameof(InceptionB))
    {
        branch3x3 = new BasicConv2d(cin, 384, 3, stride: 2);
        branch3x3dbl_1 = new BasicConv2d(cin, 64, 1);
        branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
        branch3x3dbl_3 = new BasicConv2d(96, 96, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => cat(
    [
        branch3x3.call(x),
        branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
        nn.functional.max_pool2d(x, 3, 2),
    ], 1);
}

/// <summary>Inception-v3's 17×17 block with factorized 7×7 convolutions (InceptionC).</summary>
sealed class InceptionC : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d branch1x1, branch7x7_1, branch7x7_2, branch7x7_3,
        branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;

    public InceptionC(int cin, int c7) : base(nameof(InceptionC))
    {
        (long, long) row = (1, 7), col = (7, 1), padRow = (0, 3), padCol = (3, 0);
        branch1x1 = new BasicConv2d(cin, 192, 1);
        branch7x7_1 = new BasicConv2d(cin, c7, 1);
        branch7x7_2 = new BasicConv2d(c7, c7, row, padRow);
        branch7x7_3 = new BasicConv2d(c7, 192, col, padCol);
        branch7x7dbl_1 = new BasicConv2d(cin, c7, 1);
        branch7x7dbl_2 = new BasicConv2d(c7, c7, col, padCol);
        branch7x7dbl_3 = new BasicConv2d(c7, c7, row, padRow);
        branch7x7dbl_4 = new BasicConv2d(c7, c7, col, padCol);
        branch7x7dbl_5 = new BasicConv2d(c7, 192, row, padRow);
        branch_pool = new BasicConv2d(cin, 192, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => cat(
    [
        branch1x1.call(x),
        branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(x))),
        branch7x7dbl_5.call(branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(branch7x7dbl_1.call(x))))),
        branch_pool.call(nn.functional.avg_pool2d(x, 3, 1, 1)),
    ], 1);
}

/// <summary>Inception-v3's grid reduction 17→8 (InceptionD).</summary>
sealed class InceptionD : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;

    public InceptionD(int cin) : base(nameof(InceptionD))
    {
        branch3x3_1 = new BasicConv2d(cin, 192, 1);
        branch3x3_2 = new BasicConv2d(192, 320, 3, stride: 2);
        branch7x7x3_1 = new BasicConv2d(cin, 192, 1);
        branch7x7x3_2 = new BasicConv2d(192, 192, (1, 7), (0, 3));
        branch7x7x3_3 = new BasicConv2d(192, 192, (7, 1), (3, 0));
        branch7x7x3_4 = new BasicConv2d(192, 192, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => cat(
    [
        branch3x3_2.call(branch3x3_1.call(x)),
        branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(x)))),
        nn.functional.max_pool2d(x, 3, 2),
    ], 1);
}

/// <summary>Inception-v3's 8×8 block with expanded filter banks (InceptionE): 1×3 and 3×1 side by side.</summary>
sealed class InceptionE : nn.Module<Tensor, Tensor>
{
    readonly BasicConv2d branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b,
        branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;

    public InceptionE(int cin) : base(nameof(InceptionE))
    {
        branch1x1 = new BasicConv2d(cin, 320, 1);
        branch3x3_1 = new BasicConv2d(cin, 384, 1);
        branch3x3_2a = new BasicConv2d(384, 384, (1, 3), (0, 1));
        branch3x3_2b = new BasicConv2d(384, 384, (3, 1), (1, 0));
        branch3x3dbl_1 = new BasicConv2d(cin, 448, 1);
        branch3x3dbl_2 = new BasicConv2d(448, 384, 3, padding: 1);
        branch3x3dbl_3a = new BasicConv2d(384, 384, (1, 3), (0, 1));
        branch3x3dbl_3b = new BasicConv2d(384, 384, (3, 1), (1, 0));
        branch_pool = new BasicConv2d(cin, 192, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var b3 = branch3x3_1.call(x);
        var d3 = branch3x3dbl_2.call(branch3x3dbl_1.call(x));
        return cat(
        [
            branch1x1.call(x),
            branch3x3_2a.call(b3), branch3x3_2b.call(b3),
            branch3x3dbl_3a.call(d3), branch3x3dbl_3b.call(d3),
            branch_pool.call(nn.functional.avg_pool2d(x, 3, 1, 1)),
        ], 1);
    }
}

/// <summary>
/// torchvision's Inception-v3 (299×299 input). Layer names are torchvision's module paths
/// (Conv2d_1a_3x3 … Mixed_5b … Mixed_7c, avgpool, fc), with lower-case aliases in Lucid's style
/// (mixed5b … mixed7c; mixed6e is the layer dreams usually use). <see cref="TransformInput"/> re-maps
/// ImageNet-normalized input the way torchvision's pretrained weights expect (on by default).
/// The auxiliary classifier in those files is training-only and is ignored.
/// </summary>
internal sealed class InceptionV3 : NativeNetwork
{
    readonly BasicConv2d Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3;
    readonly InceptionA Mixed_5b, Mixed_5c, Mixed_5d;
    readonly InceptionB Mixed_6a;
    readonly InceptionC Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e;
    readonly InceptionD Mixed_7a;
    readonly InceptionE Mixed_7b, Mixed_7c;
    readonly Linear fc;

    /// <summary>Apply torchvision's transform_input (what its pretrained weights were trained with).</summary>
    public bool TransformInput { get; init; } = true;

    InceptionV3(string name) : base(name)
    {
        Conv2d_1a_3x3 = new BasicConv2d(3, 32, 3, stride: 2);
        Conv2d_2a_3x3 = new BasicConv2d(32, 32, 3);
        Conv2d_2b_3x3 = new BasicConv2d(32, 64, 3, padding: 1);
        Conv2d_3b_1x1 = new BasicConv2d(64, 80, 1);
        Conv2d_4a_3x3 = new BasicConv2d(80, 192, 3);
        Mixed_5b = new InceptionA(192, 32);
        Mixed_5c = new InceptionA(256, 64);
        Mixed_5d = new InceptionA(288, 64);
        Mixed_6a = new InceptionB(288);
        Mixed_6b = new InceptionC(768, 128);
        Mixed_6c = new InceptionC(768, 160);
        Mixed_6d = new InceptionC(768, 160);
        Mixed_6e = new InceptionC(768, 192);
        Mixed_7a = new InceptionD(768);
        Mixed_7b = new InceptionE(1280);
        Mixed_7c = new InceptionE(2048);
        fc = nn.Linear(2048, 1000);
        RegisterComponents();
        eval();
        Input = new InputSpec { Width = 299, Height = 299, Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
        foreach (var m in new[] { "5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c" }) Alias($"mixed{m}", $"Mixed_{m}");
    }

    /// <summary>Inception-v3 with untrained weights.</summary>
    public static InceptionV3 Create(string? name = null, bool transformInput = true) => new(name ?? "inception_v3") { TransformInput = transformInput };

    /// <summary>Whether a state_dict is torchvision's Inception-v3.</summary>
    public static bool Matches(IReadOnlyDictionary<string, Tensor> w) => w.ContainsKey("Mixed_7c.branch_pool.conv.weight") && w.ContainsKey("fc.weight");

    /// <summary>torchvision's files carry the auxiliary classifier (AuxLogits), which inference does not use.</summary>
    protected override bool Ignored(string key) => key.StartsWith("AuxLogits.", StringComparison.Ordinal);

    /// <inheritdoc/>
    public override string OutputLayer => "fc";

    /// <inheritdoc/>
    protected override Tensor Run(Tensor x)
    {
        if (TransformInput) x = TransformToHalfRange(x);
        x = Tap("Conv2d_1a_3x3", Conv2d_1a_3x3.call(x));
        x = Tap("Conv2d_2a_3x3", Conv2d_2a_3x3.call(x));
        x = Tap("Conv2d_2b_3x3", Conv2d_2b_3x3.call(x));
        x = Tap("maxpool1", nn.functional.max_pool2d(x, 3, 2));
        x = Tap("Conv2d_3b_1x1", Conv2d_3b_1x1.call(x));
        x = Tap("Conv2d_4a_3x3", Conv2d_4a_3x3.call(x));
        x = Tap("maxpool2", nn.functional.max_pool2d(x, 3, 2));
        x = Tap("Mixed_5b", Mixed_5b.call(x));
        x = Tap("Mixed_5c", Mixed_5c.call(x));
        x = Tap("Mixed_5d", Mixed_5d.call(x));
        x = Tap("Mixed_6a", Mixed_6a.call(x));
        x = Tap("Mixed_6b", Mixed_6b.call(x));
        x = Tap("Mixed_6c", Mixed_6c.call(x));
        x = Tap("Mixed_6d", Mixed_6d.call(x));
        x = Tap("Mixed_6e", Mixed_6e.call(x));
        x = Tap("Mixed_7a", Mixed_7a.call(x));
        x = Tap("Mixed_7b", Mixed_7b.call(x));
        x = Tap("Mixed_7c", Mixed_7c.call(x));
        x = Tap("avgpool", x.mean([2, 3], keepdim: true));
        return Tap("fc", fc.call(x.flatten(1)));
    }
}
