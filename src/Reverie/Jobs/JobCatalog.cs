using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Recipes;

namespace Reverie.Jobs;

/// <summary>Every job Reverie can run from a recipe; a new job is one line here.</summary>
public static class JobCatalog
{
    static readonly IReadOnlyDictionary<string, IJob> All = new IJob[]
    {
        new Dreaming.DreamJob(),
        new Visualization.VisualizeJob(),
        new Visualization.AtlasJob(),
        new Visualization.InvertJob(),
        new Visualization.DreamTargetJob(),
        new Style.StyleJob(),
        new Style.StyleGridJob(),
        new Style.StylizeJob(),
        new Style.StylizeTrainJob(),
        new Adversarial.AttackJob(),
        new Adversarial.AttackBenchmarkJob(),
        new Adversarial.FoolJob(),
        new Adversarial.SweepJob(),
        new Adversarial.AttackDataJob(),
        new Training.EvaluateJob(),
        new Training.TrainingJob(),
        new Explaining.ExplainJob(),
        new Explaining.ActivationsJob(),
        new Science.ShortcutJob(),
        new Science.CopernicusJob(),
    }.ToDictionary(j => j.Kind);

    /// <summary>The job of a kind, or null.</summary>
    public static IJob? Find(string kind) => All.GetValueOrDefault(kind);

    /// <summary>The kinds.</summary>
    public static IEnumerable<string> Kinds => All.Keys;

    /// <summary>The options of a recipe for its job; a recipe of another version or a malformed one gets one sentence.</summary>
    public static (IJob Job, JobOptions Options) FromRecipe(Recipe recipe, string what)
    {
        var job = Find(recipe.Command) ?? throw new BadInputException($"{what}: '{BadInputException.Shown(recipe.Command)}' is not a job Reverie can run from its options (jobs: {string.Join(", ", Kinds)}).");
        if (recipe.Options is null) throw new BadInputException($"{what} holds no options record (it was written before Reverie 0.2); replay runs such recipes from their arguments.");
        try
        {
            var options = (JobOptions?)recipe.Options.Deserialize(job.OptionsType, Recipe.JsonOptions)
                ?? throw new BadInputException($"{what} holds empty options.");
            RequireValues(options, what, "", 0);
            return (job, options);
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{what}: the options do not fit a {job.Kind} job ({Plain(e)}).");
        }
    }

    /// <summary>What a deserialization error means, in the recipe's terms rather than .NET's type names.</summary>
    static string Plain(JsonException e)
    {
        string at = string.IsNullOrEmpty(e.Path) ? "the options" : $"'{BadInputException.Shown(e.Path.TrimStart('$', '.'), 60)}'";
        if (e.Message.Contains("could not be mapped to any", StringComparison.Ordinal)
            && System.Text.RegularExpressions.Regex.Match(e.Message, "property '([^']*)'") is { Success: true } m)
            return $"'{BadInputException.Shown(m.Groups[1].Value, 60)}' is not one of its options";
        if (e.Message.Contains("could not be converted", StringComparison.Ordinal)) return $"{at} holds a value of the wrong kind";
        if (e.Message.Contains("missing required properties", StringComparison.Ordinal)) return "a required option is missing";
        return $"malformed at {at}";
    }

    static readonly System.Reflection.NullabilityInfoContext Nullability = new();

    /// <summary>
    /// JSON's null where the options record has no room for one (<c>"input": null</c>) is refused in
    /// one sentence naming the field, in the options and the records inside them.
    /// </summary>
    static void RequireValues(object record, string what, string prefix, int depth)
    {
        if (depth > 4) return;
        foreach (var p in record.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (!p.CanRead || p.GetIndexParameters().Length > 0 || p.PropertyType.IsValueType || Attribute.IsDefined(p, typeof(System.Text.Json.Serialization.JsonIgnoreAttribute))) continue;
            object? value = p.GetValue(record);
            string name = prefix + JsonNamingPolicy.CamelCase.ConvertName(p.Name);
            if (value is null)
            {
                if (Nullability.Create(p).ReadState == System.Reflection.NullabilityState.NotNull)
                    throw new BadInputException($"{what}: the option '{name}' is null; it needs a value.");
                continue;
            }
            if (value is System.Collections.IEnumerable list and not string)
            {
                foreach (var item in list)
                    if (item is null && Nullability.Create(p).GenericTypeArguments is [{ ReadState: System.Reflection.NullabilityState.NotNull }])
                        throw new BadInputException($"{what}: the option '{name}' holds a null; it needs values.");
                continue;
            }
            if (p.PropertyType.Assembly == typeof(JobCatalog).Assembly && p.PropertyType.IsClass) RequireValues(value, what, name + ".", depth + 1);
        }
    }

    /// <summary>A recipe for running <paramref name="job"/> with <paramref name="options"/>: the options serialized, and the inputs' hashes.</summary>
    public static Recipe RecipeFor(IJob job, JobOptions options, IReadOnlyList<string>? arguments = null) => new()
    {
        Command = job.Kind,
        Arguments = arguments ?? [],
        Options = (JsonObject)JsonSerializer.SerializeToNode(options, options.GetType(), Recipe.JsonOptions)!,
        Inputs = options.InputFiles().Distinct().ToDictionary(f => f, f => Imaging.InputFile.Sha256(f, "input")),
    };
}
