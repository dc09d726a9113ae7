using System.Text.Json;
using Reverie.Models;

namespace Reverie.Training;

/// <summary>The architectures <c>reverie train --arch</c> knows by name.</summary>
internal static class Architectures
{
    /// <summary>Names of the presets.</summary>
    public static readonly string[] Names = ["fashion", "mlp", "textures", "small"];

    static ConvNetLayer Conv(string name, int outC, int stride = 1) => new() { Type = "conv", Name = name, Out = outC, Stride = stride };
    static ConvNetLayer Pool(string name) => new() { Type = "pool", Name = name };
    static ConvNetLayer Dense(string name, int units) => new() { Type = "dense", Name = name, Out = units };
    static ConvNetLayer Dropout(double p) => new() { Type = "dropout", P = p };

    /// <summary>
    /// A preset by name, for <paramref name="classes"/> classes, or a JSON file holding a <see cref="ConvNetSpec"/>.
    /// <c>fashion</c>: 28×28 gray, three 3×3 convolutions with batch norm in two pooled stages (32; 64, 64
    /// channels), a 256-unit dense layer, dropout. <c>mlp</c>: 28×28 gray, no convolutions, dense layers
    /// of 512 and 256 units (a surrogate of another architecture for transfer attacks). <c>textures</c>: 128×128 RGB, six convolutions
    /// (32 stride 2, 64 stride 2, pool, 96, 128, pool, 192, 256), global average pooling. <c>small</c>: the same
    /// layout at a quarter of the channels (16, 32, 48, 64, 96, 128), at <paramref name="size"/> (default 128).
    /// </summary>
    public static ConvNetSpec Get(string name, int classes, int size = 0)
    {
        var spec = name switch
        {
            "fashion" => new ConvNetSpec
            {
                InputChannels = 1, InputHeight = 28, InputWidth = 28,
                Layers =
                [
                    Conv("conv1", 32), Pool("pool1"),
                    Conv("conv2", 64), Conv("conv3", 64), Pool("pool2"),
                    new() { Type = "flatten" }, Dropout(0.3), Dense("fc1", 256), Dropout(0.3), Dense("logits", classes),
                ],
            },
            "mlp" => new ConvNetSpec
            {
                InputChannels = 1, InputHeight = size > 0 ? size : 28, InputWidth = size > 0 ? size : 28,
                Layers = [new() { Type = "flatten" }, Dense("fc1", 512), Dropout(0.2), Dense("fc2", 256), Dropout(0.2), Dense("logits", classes)],
            },
            "textures" => SixConv(size, classes, [32, 64, 96, 128, 192, 256]),
            "small" => SixConv(size, classes, [16, 32, 48, 64, 96, 128]),
            _ when File.Exists(name) => FromFile(name, classes),
            _ => throw new BadInputException($"Unknown architecture '{name}'; known: {string.Join(", ", Names)}, or a JSON file describing one."),
        };
        spec.Validate();
        return spec;
    }

    static ConvNetSpec SixConv(int size, int classes, int[] c) => new()
    {
        InputChannels = 3, InputHeight = size > 0 ? size : 128, InputWidth = size > 0 ? size : 128,
        Layers =
        [
            Conv("conv1", c[0], 2), Conv("conv2", c[1], 2), Pool("pool1"), Conv("conv3", c[2]),
            Conv("conv4", c[3]), Pool("pool2"), Conv("conv5", c[4]), Conv("conv6", c[5]),
            new() { Type = "gap", Name = "gap" }, Dropout(0.2), Dense("logits", classes),
        ],
    };

    static ConvNetSpec FromFile(string path, int classes)
    {
        try
        {
            var spec = JsonSerializer.Deserialize<ConvNetSpec>(Imaging.InputFile.ReadAllText(path, "architecture file", 1 << 20, confined: false), Checkpoint.Json) ?? throw new JsonException("empty");
            return spec.Classes == classes ? spec : spec.WithClasses(classes);
        }
        catch (JsonException e) { throw new BadInputException($"'{path}' is not a valid architecture file: {e.Message}"); }
    }

    /// <summary>The input spec that goes with an architecture: gray or RGB, with the data's mean and std.</summary>
    public static InputSpec InputFor(ConvNetSpec spec, string preset) => preset switch
    {
        "fashion" or "mlp" => new InputSpec { Channels = ChannelOrder.Gray, Mean = [0.286f], Std = [0.353f] },
        _ when spec.InputChannels == 1 => new InputSpec { Channels = ChannelOrder.Gray, Mean = [0.5f], Std = [0.25f] },
        _ => new InputSpec { Channels = ChannelOrder.Rgb, Mean = [0.5f, 0.5f, 0.5f], Std = [0.25f, 0.25f, 0.25f] },
    };
}
