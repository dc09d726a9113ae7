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
            // A recipe is data: an old recipe's arguments run only as the command that makes an output
            // (a job's command), never batch, studio, models or replay; without response files, --force
            // or any output location of its own.
            if (JobCatalog.Find(recipe.Command) is not { } known)
                throw new BadInputException($"'{BadInputException.Shown(f)}' holds a recipe of '{BadInputException.Shown(recipe.Command)}', which replay does not run; it runs the recipes of commands that make outputs ({string.Join(", ", JobCatalog.Kinds)}).");
            if (recipe.Arguments.Count == 0)
                throw new BadInputException($"'{BadInputException.Shown(f)}' holds a {known.Kind} recipe with neither options nor arguments; it cannot be replayed.");
            // Arguments hold the command's own words ("style", "grid") when it has subcommands.
            var words = recipe.Command.Split(' ');
            var args = recipe.Arguments.Take(words.Length).SequenceEqual(words) ? recipe.Arguments.ToList() : [.. words, .. recipe.Arguments];
            if (args.FirstOrDefault(a => a.StartsWith('@')) is { } responseFile)
                throw new BadInputException($"'{BadInputException.Shown(f)}' holds the argument '{BadInputException.Shown(responseFile)}', a response file, which replay does not read.");
            // Output locations and --force in a recipe are never used (an untrusted recipe must not choose where files go, or replace them).
            string[] dropWithValue = ["--snapshots", "-o", "--output", "--events-dir"];
            for (int i = 0; i < args.Count;)
            {
                string a = args[i];
                bool attached = dropWithValue.Any(o => a.StartsWith(o + "=", StringComparison.Ordinal) || a.StartsWith(o + ":", StringComparison.Ordinal))
                    || a == "--force" || a.StartsWith("--force=", StringComparison.Ordinal) || a.StartsWith("--force:", StringComparison.Ordinal);
                if (attached) args.RemoveAt(i);
                else if (dropWithValue.Contains(a)) args.RemoveRange(i, Math.Min(2, args.Count - i));
                else i++;
            }
            if (inv.Forced) args.Add("--force");
            args.AddRange(["-o", target]);
            return await ReverieCli.RunAsync(args.ToArray(), inv.Out, inv.Err);
        });
        return cmd;
    }
}
