using System.Text.Json.Serialization;

namespace Reverie.Models.Registry;

/// <summary>A named model: where its weights come from, how to check them, and how to feed it.</summary>
public sealed record ModelEntry
{
    /// <summary>The name users type (<c>--model googlenet</c>).</summary>
    public required string Name { get; init; }
    /// <summary>One line about the model.</summary>
    public string? Description { get; init; }
    /// <summary>Weights format: <c>onnx</c>; <c>pth</c> or <c>safetensors</c> for a torchvision state_dict built natively; <c>embedded</c> for a Reverie checkpoint built into the library; <c>packaged</c> for an ONNX file a NuGet package brings (see <see cref="Package"/>).</summary>
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
    /// <summary><c>imagenet</c> for the built-in ILSVRC-2012 names, or the name of a labels file (one per line) in the model's cache folder.</summary>
    public string? Labels { get; init; }

    /// <summary>For a <c>packaged</c> model: the NuGet package (<c>ID/VERSION</c>) whose file the build places beside Reverie.</summary>
    public string? Package { get; init; }

    /// <summary>True for a model whose file comes with Reverie's build from a NuGet package (no download, nothing to install).</summary>
    [JsonIgnore]
    public bool IsPackaged => Format == "packaged";

    /// <summary>True for the models built into the library (always available, offline).</summary>
    [JsonIgnore]
    public bool IsEmbedded => Format == "embedded";

    /// <summary>The cache file name.</summary>
    [JsonIgnore]
    public string FileName => File ?? (Url is not null ? Path.GetFileName(new Uri(Url).AbsolutePath) : Name + "." + Format);

    /// <summary>
    /// Raises <see cref="BadInputException"/> for an entry that could reach outside its cache folder
    /// or cannot run: a name or file that is not a plain file name, a labels file that is neither
    /// <c>imagenet</c> nor a plain name in the model's folder, an address that is not http(s), or an
    /// input spec with no usable values. <paramref name="what"/> names where the entry came from.
    /// </summary>
    internal void Check(string what, bool trusted = false)
    {
        string at = $"Model entry '{BadInputException.Shown(Name)}' in {what}";
        if (!IsPlainName(Name)) throw new BadInputException($"{at}: the name must be letters, digits, '-', '_' and '.', not starting with '.' (at most 100 characters).");
        if (IsPackaged)
        {
            if (!trusted) throw new BadInputException($"{at}: only Reverie's built-in registry lists packaged models.");
        }
        else if (File is not null && !IsPlainName(File)) throw new BadInputException($"{at}: 'file' must be a plain file name in the model's cache folder; got '{BadInputException.Shown(File)}'.");
        if (Labels is not null && Labels != "imagenet" && !IsPlainName(Labels)) throw new BadInputException($"{at}: 'labels' must be imagenet or a file name in the model's cache folder; got '{BadInputException.Shown(Labels)}'.");
        if (Url is not null && !(Uri.TryCreate(Url, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"))
            throw new BadInputException($"{at}: 'url' must be an http or https address; got '{BadInputException.Shown(Url)}'.");
        if (Url is not null && !IsPlainName(FileName)) throw new BadInputException($"{at}: the address does not end in a usable file name; give 'file'.");
        if (Format is not ("onnx" or "pth" or "safetensors" or "embedded" or "packaged")) throw new BadInputException($"{at}: 'format' must be onnx, pth, safetensors or embedded; got '{BadInputException.Shown(Format)}'.");
        if (Size is < 0) throw new BadInputException($"{at}: 'size' must not be negative.");
        Input.Check(at);
    }

    /// <summary>A name that stays in its folder: no separators, no leading dot, no control characters.</summary>
    internal static bool IsPlainName(string s) =>
        s.Length is > 0 and <= 100 && !s.StartsWith('.') && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '+');
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
