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
            return (job, options);
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{what}: the options do not fit a {job.Kind} job ({BadInputException.Shown(e.Message.Split('.')[0], 120)}).");
        }
    }

    /// <summary>A recipe for running <paramref name="job"/> with <paramref name="options"/>: the options serialized, and the inputs' hashes.</summary>
    public static Recipe RecipeFor(IJob job, JobOptions options, IReadOnlyList<string>? arguments = null) => new()
    {
        Command = job.Kind,
        Arguments = arguments ?? [],
        Options = (JsonObject)JsonSerializer.SerializeToNode(options, options.GetType(), Recipe.JsonOptions)!,
        Inputs = options.InputFiles().Distinct().ToDictionary(f => f, Models.Registry.Downloader.Sha256Of),
    };
}
