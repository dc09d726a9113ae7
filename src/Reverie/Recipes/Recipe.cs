using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;

namespace Reverie.Recipes;

/// <summary>
/// How an output was made: the command, its options record (for jobs: every parameter, the
/// model, the seed; replayed as is), the input files' hashes, the results, whether it was
/// interrupted and Reverie's version; the command-line arguments too, for people and for commands
/// that are not jobs. It is written into the PNG (a tEXt chunk keyed <c>reverie:recipe</c>) and
/// as JSON beside it, and <c>reverie replay</c> re-runs it.
/// </summary>
public sealed record Recipe
{
    /// <summary>PNG keyword of the recipe chunk.</summary>
    public const string Keyword = "reverie:recipe";

    /// <summary>Reverie's version.</summary>
    public string Version { get; init; } = typeof(Recipe).Assembly.GetName().Version?.ToString(3) ?? "0";
    /// <summary>The command (dream, visualize ...).</summary>
    public required string Command { get; init; }
    /// <summary>The command's arguments as given (output options excluded).</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];
    /// <summary>A job's options record, serialized: what replay and the studio run.</summary>
    public JsonObject? Options { get; init; }
    /// <summary>What the run measured (final losses, labels before and after ...).</summary>
    public JsonObject? Results { get; init; }
    /// <summary>The steps actually done, when the job counts steps.</summary>
    public int? Steps { get; init; }
    /// <summary>Whether the run was interrupted before its end (the output holds what was done).</summary>
    public bool Interrupted { get; init; }
    /// <summary>Every resolved parameter of commands that are not jobs, for people and tools.</summary>
    public JsonObject Parameters { get; init; } = new();
    /// <summary>Input files and their SHA-256.</summary>
    public Dictionary<string, string> Inputs { get; init; } = new();
    /// <summary>When it was made (UTC).</summary>
    public DateTime Created { get; init; } = DateTime.UtcNow;

    /// <summary>How recipes and options records are written: camelCase, indented, enums as lower-case strings, unknown members refused.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        // Recipes live in PNG text chunks and JSON files, never in HTML: '+' and quotes stay readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    static readonly JsonSerializerOptions Lenient = new(JsonOptions) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip };

    /// <summary>The recipe as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    static bool HasControl(string? s) => s is not null && s.Any(char.IsControl);

    /// <summary>Every string in a JSON tree, keys included.</summary>
    static IEnumerable<string> Strings(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => Strings(p.Value).Prepend(p.Key)),
        JsonArray a => a.SelectMany(Strings),
        JsonValue v when v.TryGetValue(out string? s) => [s],
        _ => [],
    };

    /// <summary>Parses a recipe; a malformed one gets one sentence.</summary>
    public static Recipe FromJson(string json, string what)
    {
        try
        {
            var recipe = JsonSerializer.Deserialize<Recipe>(json, Lenient) ?? throw new BadInputException($"{what} holds an empty recipe.");
            // "command": null satisfies 'required' for the serializer; a recipe without a command is none.
            if (string.IsNullOrWhiteSpace(recipe.Command) || recipe.Arguments is null || recipe.Parameters is null || recipe.Inputs is null)
                throw new BadInputException($"{what} does not hold a readable Reverie recipe (it has no command, or a list of it is null).");
            // A recipe's words are shown on terminals and passed to commands: no control character (an escape sequence, a new line in a name).
            if (new[] { recipe.Command }.Concat(recipe.Arguments).Concat(Strings(recipe.Options)).FirstOrDefault(HasControl) is { } bad)
                throw new BadInputException($"{what} holds a control character in '{BadInputException.Shown(bad, 40)}'; a recipe's names, paths and settings are plain text.");
            return recipe;
        }
        catch (JsonException e)
        {
            // The serializer's own message names .NET types: say where the JSON went wrong instead.
            string why = e.Message.Contains("missing required properties", StringComparison.Ordinal)
                ? "it has no command: a report or other JSON, not a recipe; Reverie writes a run's recipe beside its outputs as NAME.recipe.json"
                : $"malformed at {e.Path ?? "$"}, line {(e.LineNumber ?? 0) + 1}";
            throw new BadInputException($"{what} does not hold a readable Reverie recipe ({why}).");
        }
    }

    /// <summary>Writes an image with its recipe: PNG with the recipe chunk (or JPEG), plus OUT.recipe.json beside it; both atomically.</summary>
    public void SaveWithImage(TorchSharp.torch.Tensor image, string path) => SaveWithImage(image, path, sidecar: true);

    /// <summary>Writes an image with its recipe in the PNG chunk, and as OUT.recipe.json when <paramref name="sidecar"/>.</summary>
    internal void SaveWithImage(TorchSharp.torch.Tensor image, string path, bool sidecar)
    {
        var (rgba, w, h) = ImageIO.ToRgba(image);
        var format = ImageIO.FormatFor(path);
        byte[] bytes = ImageIO.Encode(rgba, w, h, format);
        if (format == SkiaSharp.SKEncodedImageFormat.Png) bytes = PngText.Insert(bytes, Keyword, ToJson());
        AtomicFile.WriteAllBytes(path, bytes);
        if (sidecar) SaveBeside(path);
    }

    /// <summary>
    /// Writes this recipe beside an output, as <c>OUT.recipe.json</c>, atomically, with the output's
    /// file name and SHA-256 under <c>"output"</c>: the proof that Reverie wrote that very file
    /// (<see cref="OutputFiles.WrittenByReverie"/>). Call it after the output is written.
    /// </summary>
    internal void SaveBeside(string output)
    {
        var node = JsonNode.Parse(ToJson())!.AsObject();
        node[OutputFiles.OutputKey] = OutputFiles.Fingerprint(output);
        string side = OutputFiles.SidecarOf(output);
        // The further files recorded by a run into this sidecar stay recorded (they may have been written first).
        try
        {
            if (OutputFiles.IsRecipe(side) && JsonNode.Parse(InputFile.ReadAllText(side, "recipe", MaxJsonBytes, confined: false))?[OutputFiles.FilesKey] is JsonArray files)
                node[OutputFiles.FilesKey] = files.DeepClone();
        }
        catch (JsonException) { }
        AtomicFile.WriteAllText(side, node.ToJsonString(JsonOptions));
    }

    /// <summary>The largest recipe read from a JSON file: 1 MB (a recipe is a few kB).</summary>
    internal const long MaxJsonBytes = 1 << 20;

    /// <summary>The largest image a recipe is read from: 256 MB.</summary>
    internal const long MaxImageBytes = 256 << 20;

    /// <summary>Reads the recipe of an output: from its PNG chunk, else from OUT.recipe.json beside it (or the OUT.json that versions before 0.3 wrote).</summary>
    public static Recipe Load(string path)
    {
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return FromJson(InputFile.ReadAllText(path, "recipe", MaxJsonBytes), path);
        if (PngText.Read(InputFile.ReadAllBytes(path, "recipe's image", MaxImageBytes)).TryGetValue(Keyword, out var json)) return FromJson(json, path);
        string side = OutputFiles.SidecarOf(path);
        if (File.Exists(side)) return FromJson(InputFile.ReadAllText(side, "recipe", MaxJsonBytes), side);
        string old = Path.ChangeExtension(path, ".json");
        if (OutputFiles.IsRecipe(old)) return FromJson(InputFile.ReadAllText(old, "recipe", MaxJsonBytes), old);
        throw new BadInputException($"'{path}' carries no Reverie recipe (no '{Keyword}' PNG chunk and no JSON beside it).");
    }
}
