using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Reverie.Models;
using Reverie.Models.Torch;
using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>
/// The JSON half of a Reverie checkpoint (<c>NAME.json</c>); the weights are in <c>NAME.safetensors</c>
/// beside it, named by the network's state_dict (<c>conv1.conv.weight</c>, <c>conv1.norm.running_mean</c>, …).
/// </summary>
internal sealed record CheckpointInfo
{
    /// <summary>Always <c>reverie-checkpoint</c>.</summary>
    public string Format { get; init; } = Checkpoint.FormatName;
    /// <summary>Format version (1).</summary>
    public int Version { get; init; } = 1;
    /// <summary>The model's name.</summary>
    public required string Name { get; init; }
    /// <summary>One line about the model.</summary>
    public string? Description { get; init; }
    /// <summary>The architecture.</summary>
    public required ConvNetSpec Architecture { get; init; }
    /// <summary>How the network takes its input.</summary>
    public required InputSpec Input { get; init; }
    /// <summary>Class names in output order.</summary>
    public required IReadOnlyList<string> Labels { get; init; }
    /// <summary>The layer a dream uses by default.</summary>
    public string? DreamLayer { get; init; }
    /// <summary>The weights file, relative to the JSON.</summary>
    public string Weights { get; init; } = "";
    /// <summary>SHA-256 of the weights file.</summary>
    public string? WeightsSha256 { get; init; }
    /// <summary>How it was trained: the command, data, options, seed and version.</summary>
    public JsonObject? Recipe { get; init; }
    /// <summary>What it achieved: accuracies, per-class accuracies, the history of epochs.</summary>
    public JsonObject? Metrics { get; init; }
}

/// <summary>Saves and loads Reverie checkpoints, including the models embedded in the library.</summary>
internal static class Checkpoint
{
    /// <summary>The value of the <c>format</c> field.</summary>
    public const string FormatName = "reverie-checkpoint";

    /// <summary>JSON settings of checkpoints (camelCase, indented).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNameCaseInsensitive = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The models embedded in the library, by name.</summary>
    public static readonly string[] Embedded = ["fashion", "fashion-mlp", "fashion-robust", "textures"];

    /// <summary><c>DIR/NAME</c> from any of <c>NAME</c>, <c>NAME.json</c> or <c>NAME.safetensors</c>.</summary>
    public static string Stem(string path) =>
        path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? path[..^5]
        : path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? path[..^12]
        : path;

    /// <summary>True when <paramref name="path"/> names a checkpoint (its JSON exists and says so).</summary>
    public static bool IsCheckpoint(string path)
    {
        string json = Stem(path) + ".json";
        if (!File.Exists(json)) return false;
        try { return JsonNode.Parse(Imaging.InputFile.ReadAllText(json, "checkpoint", MaxInfoBytes, confined: false))?["format"]?.GetValue<string>() == FormatName; }
        catch (Exception e) when (e is JsonException or InvalidOperationException or BadInputException) { return false; }
    }

    /// <summary>Writes <c>STEM.safetensors</c> then <c>STEM.json</c>, each through a temporary file.</summary>
    public static CheckpointInfo Save(string path, IReadOnlyDictionary<string, Tensor> weights, CheckpointInfo info)
    {
        string stem = Stem(path);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(stem));
        if (dir is not null) Directory.CreateDirectory(dir);
        string weightsPath = stem + ".safetensors";
        SafeTensors.Save(weightsPath, weights, new Dictionary<string, string> { ["format"] = FormatName, ["name"] = info.Name });
        info = info with { Weights = Path.GetFileName(weightsPath), WeightsSha256 = Models.Registry.Downloader.Sha256Of(weightsPath) };
        Imaging.AtomicFile.WriteAllText(stem + ".json", JsonSerializer.Serialize(info, Json));
        return info;
    }

    /// <summary>The largest checkpoint JSON read: 16 MB (it holds the training history).</summary>
    const long MaxInfoBytes = 16 << 20;

    /// <summary>Reads a checkpoint's JSON.</summary>
    public static CheckpointInfo ReadInfo(string path)
    {
        string json = Stem(path) + ".json";
        return ParseInfo(Imaging.InputFile.ReadAllText(json, "checkpoint", MaxInfoBytes, confined: false), json);
    }

    static CheckpointInfo ParseInfo(string text, string what)
    {
        CheckpointInfo? info;
        try { info = JsonSerializer.Deserialize<CheckpointInfo>(text, Json); }
        catch (JsonException e) { throw new BadInputException($"'{what}' is not a valid Reverie checkpoint: {e.Message}"); }
        if (info is null || info.Format != FormatName) throw new BadInputException($"'{what}' is not a Reverie checkpoint (its format is not '{FormatName}').");
        if (info.Version != 1) throw new BadInputException($"'{what}' is checkpoint version {info.Version}; this Reverie reads version 1.");
        return info;
    }

    /// <summary>Opens a checkpoint as a network (weights frozen, evaluation mode).</summary>
    public static ConvNet Load(string path)
    {
        var info = ReadInfo(path);
        string weights = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Stem(path) + ".json"))!, info.Weights);
        if (!File.Exists(weights)) throw new BadInputException($"Checkpoint '{Stem(path)}.json' names weights '{weights}', which do not exist.");
        using var fs = Imaging.InputFile.OpenRead(weights, "checkpoint's weights", Models.Registry.ModelRegistry.MaxWeightsBytes, confined: false);
        return Build(info, fs, weights);
    }

    /// <summary>Opens one of the models embedded in the library (<see cref="Embedded"/>).</summary>
    public static ConvNet LoadEmbedded(string name)
    {
        var asm = typeof(Checkpoint).Assembly;
        using var json = asm.GetManifestResourceStream($"Reverie.Models.{name}.json")
            ?? throw new BadInputException($"No embedded model '{name}'; embedded: {string.Join(", ", Embedded)}.");
        using var weights = asm.GetManifestResourceStream($"Reverie.Models.{name}.safetensors")
            ?? throw new ReverieException($"The embedded model '{name}' lacks its weights (a broken build).");
        var info = ParseInfo(new StreamReader(json).ReadToEnd(), $"embedded {name}.json");
        var ms = new MemoryStream();
        weights.CopyTo(ms);
        ms.Position = 0;
        return Build(info, ms, $"embedded {name}.safetensors");
    }

    /// <summary>The JSON of an embedded model.</summary>
    public static CheckpointInfo EmbeddedInfo(string name)
    {
        using var json = typeof(Checkpoint).Assembly.GetManifestResourceStream($"Reverie.Models.{name}.json")
            ?? throw new BadInputException($"No embedded model '{name}'; embedded: {string.Join(", ", Embedded)}.");
        return ParseInfo(new StreamReader(json).ReadToEnd(), $"embedded {name}.json");
    }

    static ConvNet Build(CheckpointInfo info, Stream weights, string what)
    {
        var state = SafeTensors.Load(weights, what, out _);
        try
        {
            var net = new ConvNet(info.Name, info.Architecture, info.Input, info.Labels) { DreamLayer = info.DreamLayer };
            try
            {
                net.LoadWeights(state);
                foreach (var (_, p) in net.named_parameters()) p.requires_grad_(false);
                net.eval();
                return net;
            }
            catch { net.Dispose(); throw; }
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }
}
