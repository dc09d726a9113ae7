using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;

namespace Reverie.Recipes;

/// <summary>
/// How an output was made: the command and its arguments, every resolved parameter, the model
/// and input hashes, the seed and Reverie's version. It is written into the PNG (a tEXt chunk
/// keyed <c>reverie:recipe</c>) and as JSON beside it, and <c>reverie replay</c> re-runs it.
/// </summary>
public sealed record Recipe
{
    /// <summary>PNG keyword of the recipe chunk.</summary>
    public const string Keyword = "reverie:recipe";

    /// <summary>Reverie's version.</summary>
    public string Version { get; init; } = typeof(Recipe).Assembly.GetName().Version?.ToString(3) ?? "0";
    /// <summary>The command (dream, visualize ...).</summary>
    public required string Command { get; init; }
    /// <summary>The command's arguments as given (output options excluded), enough to run it again.</summary>
    public required IReadOnlyList<string> Arguments { get; init; }
    /// <summary>Every resolved parameter, for people and tools.</summary>
    public JsonObject Parameters { get; init; } = new();
    /// <summary>Input files and their SHA-256.</summary>
    public Dictionary<string, string> Inputs { get; init; } = new();
    /// <summary>When it was made (UTC).</summary>
    public DateTime Created { get; init; } = DateTime.UtcNow;

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>The recipe as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses a recipe.</summary>
    public static Recipe FromJson(string json, string what) =>
        JsonSerializer.Deserialize<Recipe>(json, Json) ?? throw new BadInputException($"{what} holds an empty recipe.");

    /// <summary>Writes an image with its recipe: PNG with the recipe chunk (or JPEG), plus OUT.json beside it; both atomically.</summary>
    public void SaveWithImage(TorchSharp.torch.Tensor image, string path)
    {
        var (rgba, w, h) = ImageIO.ToRgba(image);
        var format = ImageIO.FormatFor(path);
        byte[] bytes = ImageIO.Encode(rgba, w, h, format);
        if (format == SkiaSharp.SKEncodedImageFormat.Png) bytes = PngText.Insert(bytes, Keyword, ToJson());
        AtomicFile.WriteAllBytes(path, bytes);
        AtomicFile.WriteAllText(Path.ChangeExtension(path, ".json"), ToJson());
    }

    /// <summary>Reads the recipe of an output: from its PNG chunk, else from the JSON beside it.</summary>
    public static Recipe Load(string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"'{path}' does not exist.");
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return FromJson(File.ReadAllText(path), path);
        if (PngText.Read(File.ReadAllBytes(path)).TryGetValue(Keyword, out var json)) return FromJson(json, path);
        string side = Path.ChangeExtension(path, ".json");
        if (File.Exists(side)) return FromJson(File.ReadAllText(side), side);
        throw new BadInputException($"'{path}' carries no Reverie recipe (no '{Keyword}' PNG chunk and no JSON beside it).");
    }
}
