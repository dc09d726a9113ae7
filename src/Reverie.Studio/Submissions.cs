using System.Text.Json.Nodes;
using Reverie.Jobs;
using Reverie.Recipes;

namespace Reverie.Studio;

/// <summary>
/// Turns a submitted recipe into the recipe a job runs: upload ids become their stored files, every
/// path must lie under the data folder or the examples, and the options pass the same validation as
/// the CLI's. Whatever is refused gets one sentence.
/// </summary>
public sealed class Submissions(StudioSettings settings, Uploads uploads)
{
    /// <summary>Jobs that train networks for minutes to hours: they run from the command line.</summary>
    static readonly HashSet<string> CommandLineOnly = ["stylize train", "science-shortcut", "science-copernicus", "train"];

    /// <summary>Jobs whose product is a folder, a report or an animation, not the one image a studio job keeps: they run from the command line.</summary>
    static readonly HashSet<string> NotOneImage = ["attack data", "attack benchmark"];

    IEnumerable<string> Roots => new[] { settings.Data, settings.Examples }.OfType<string>().Select(r => Path.GetFullPath(r).TrimEnd('/') + "/");

    bool UnderRoots(string path) => Roots.Any(r => Path.GetFullPath(path).StartsWith(r, StringComparison.Ordinal));

    /// <summary>The checked recipe (JSON) and its kind; <see cref="BadInputException"/> for anything refused.</summary>
    public (string Kind, string Recipe) Check(string json)
    {
        var recipe = Recipe.FromJson(json, "The recipe");
        if (recipe.Options is null) throw new BadInputException("The recipe holds no options record; the studio runs recipes of Reverie 0.2 or later (the JSON the CLI writes beside its outputs).");
        if (CommandLineOnly.Contains(recipe.Command)) throw new BadInputException($"'{recipe.Command}' trains a network for a long time; run it from the command line.");
        if (NotOneImage.Contains(recipe.Command) || (recipe.Command == "dream" && recipe.Options["zoom"] is JsonValue z && z.TryGetValue(out int frames) && frames > 0))
            throw new BadInputException($"'{(recipe.Command == "dream" ? "dream --zoom" : recipe.Command)}' makes {(recipe.Command == "dream" ? "an animation" : "a folder of results")}, not one image; run it from the command line.");
        var options = (JsonObject)recipe.Options.DeepClone();
        Resolve(options);
        var (job, parsed) = JobCatalog.FromRecipe(recipe with { Options = options }, "The recipe");
        parsed.Validate();
        using (Reverie.Imaging.InputFile.Confine(settings.ReadRoots))
            foreach (var f in parsed.InputFiles())
                Reverie.Imaging.InputFile.Check(f, "the input", Reverie.Imaging.ImageIO.MaxFileBytes);
        return (job.Kind, JobCatalog.RecipeFor(job, parsed, recipe.Arguments).ToJson());
    }

    /// <summary>Replaces upload ids by their files and refuses paths outside the roots, in place.</summary>
    void Resolve(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(p => p.Key).ToList())
                {
                    if (o[key] is JsonValue v && v.TryGetValue(out string? s)) o[key] = Value(s);
                    else Resolve(o[key]);
                }
                break;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++)
                {
                    if (a[i] is JsonValue v && v.TryGetValue(out string? s)) a[i] = Value(s);
                    else Resolve(a[i]);
                }
                break;
        }
    }

    JsonNode Value(string s)
    {
        if (Uploads.IsId(s))
            return uploads.PathOf(s) is { } stored ? JsonValue.Create(stored) : throw new BadInputException($"There is no upload with id {s}.");
        if (s.Split('/', '\\').Contains(".."))
            throw new BadInputException($"'{BadInputException.Shown(s)}' climbs out of its folder ('..'); the studio takes paths under its data folder and examples only.");
        if (Path.IsPathRooted(s) && !UnderRoots(s))
            throw new BadInputException($"'{BadInputException.Shown(s)}' lies outside the studio's data folder and examples; upload it instead.");
        return JsonValue.Create(s);
    }
}
