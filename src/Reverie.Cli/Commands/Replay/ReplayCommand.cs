using Reverie.Recipes;

namespace Reverie.Cli.Commands.Replay;

/// <summary>
/// <c>reverie replay OUT.png [-o NEW]</c>: re-runs the recipe recorded in an output. A job's recipe
/// (version 0.2 on) runs its options record as is; an older one, or a command that is not a job,
/// runs its recorded arguments once. Output-side paths of the recipe are never used.
/// </summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "An output of Reverie (PNG with a recipe, or its JSON)." };
        var output = CommonOptions.Output("Where to write the replayed result (default: FILE-replay.EXT).", required: false);
        // For programs that run jobs (the studio's worker): events as JSON lines, previews in this folder.
        var eventsDir = new Option<string?>("--events-dir") { Description = "Write the job's events as JSON lines on standard output and its previews into this folder; stop when standard input closes.", Hidden = true };
        var cmd = new Command("replay", "Run a recorded recipe again; on the same machine the result is identical.") { file, output, CommonOptions.Force, eventsDir };
        cmd.SetAction(async inv =>
        {
            string f = inv.Parse.GetValue(file)!;
            var recipe = Recipe.Load(f);
            if (recipe.Command == "replay" || recipe.Arguments.FirstOrDefault() == "replay")
                throw new BadInputException($"'{BadInputException.Shown(f)}' holds a recipe that replays another recipe; replay runs only recipes of the commands that make images.");
            foreach (var (path, sha) in recipe.Inputs)
            {
                if (!File.Exists(path)) throw new BadInputException($"The recipe's input '{BadInputException.Shown(path)}' no longer exists.");
                if (Reverie.Models.Registry.Downloader.Sha256Of(path) != sha) throw new BadInputException($"The recipe's input '{BadInputException.Shown(path)}' has changed since the recipe was made (SHA-256 differs).");
            }
            string stem = f.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Path.ChangeExtension(f, ".png") : f;
            string target = inv.Parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(stem) ?? ".", Path.GetFileNameWithoutExtension(stem) + "-replay" + Path.GetExtension(stem));
            if (recipe.Options is not null)
            {
                var (job, options) = JobCatalog.FromRecipe(recipe, f);
                return inv.Parse.GetValue(eventsDir) is { } dir
                    ? await CliRun.RunJobForProgram(inv, job, options, target, dir, recipe.Arguments)
                    : await CliRun.RunJob(inv, job, options, target, arguments: recipe.Arguments);
            }
            if (JobCatalog.Find(recipe.Command) is { } known && recipe.Arguments.Count == 0)
                throw new BadInputException($"'{BadInputException.Shown(f)}' holds a {known.Kind} recipe with neither options nor arguments; it cannot be replayed.");
            // Arguments hold the command's own words ("style", "grid") when it has subcommands.
            var words = recipe.Command.Split(' ');
            var args = recipe.Arguments.Take(words.Length).SequenceEqual(words) ? recipe.Arguments.ToList() : [.. words, .. recipe.Arguments];
            // Output locations in a recipe are never used (an untrusted recipe must not choose where files go).
            foreach (var outputOption in new[] { "--snapshots", "-o", "--output" })
                for (int at; (at = args.IndexOf(outputOption)) >= 0;) args.RemoveRange(at, Math.Min(2, args.Count - at));
            args.RemoveAll(a => a.StartsWith("--snapshots=", StringComparison.Ordinal) || a.StartsWith("--output=", StringComparison.Ordinal) || a.StartsWith("-o=", StringComparison.Ordinal));
            args.AddRange(["-o", target]);
            return await ReverieCli.RunAsync(args.ToArray(), inv.Out, inv.Err);
        });
        return cmd;
    }
}
