using System.Text.Json.Serialization;

namespace Reverie.Models.Registry;

/// <summary>A named model: where its weights come from, how to check them, and how to feed it.</summary>
public sealed record ModelEntry
{
    /// <summary>The name users type (<c>--model googlenet</c>).</summary>
    public required string Name { get; init; }
    /// <summary>One line about the model.</summary>
    public string? Description { get; init; }
    /// <summary>Weights format: <c>onnx</c>; <c>pth</c> or <c>safetensors</c> for a torchvision state_dict built natively; <c>embedded</c> for a Reverie checkpoint built into the library.</summary>
    public string Format { get; init; } = "onnx";
    /// <summary>File name in the cache.</summary>
    public string? File { get; init; }
    /// <summary>Download address, or null for a model added from a local file.</summary>
    public string? Url { get; init; }
    /// <summary>SHA-256 of the weights file, lower-case hex.</summary>
    public string? Sha256 { get; init; }
    /// <summary>The first hex digits of the file's SHA-256, when only they are published (torchvision puts them in its file names, and torch.hub checks them).</summary>
    public string? Sha256Prefix { get; init; }
    /// <summary>Size of the weights file in bytes.</summary>
    public long? Size { get; init; }
    /// <summary>Input spec.</summary>
    public InputSpec Input { get; init; } = new();
    /// <summary><c>imagenet</c> for the built-in ILSVRC-2012 names, or a path to a labels file (one per line).</summary>
    public string? Labels { get; init; }

    /// <summary>True for the models built into the library (always available, offline).</summary>
    [JsonIgnore]
    public bool IsEmbedded => Format == "embedded";

    /// <summary>The cache file name.</summary>
    [JsonIgnore]
    public string FileName => File ?? (Url is not null ? Path.GetFileName(new Uri(Url).AbsolutePath) : Name + "." + Format);
}

/// <summary>What the cache records about an installed weights file.</summary>
internal sealed record InstallRecord
{
    /// <summary>SHA-256 of the installed file.</summary>
    public required string Sha256 { get; init; }
    /// <summary>True when the file's hash matches the registry's.</summary>
    public bool Verified { get; init; }
    /// <summary>Where it came from: a URL or a local path.</summary>
    public string? Source { get; init; }
    /// <summary>When it was installed (UTC).</summary>
    public DateTime InstalledAt { get; init; }
}
