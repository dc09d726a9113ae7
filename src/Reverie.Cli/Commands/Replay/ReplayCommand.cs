using System.CommandLine;
using Reverie.Recipes;

namespace Reverie.Cli.Commands.Replay;

/// <summary><c>reverie replay OUT.png [-o NEW]</c>: re-runs the recipe recorded in an output.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "An output of Reverie (PNG with a recipe, or its JSON)." };
        var output = new Option<string?>("--output", "-o") { Description = "Where to write the replayed result (default: FILE-replay.EXT)." };
        var cmd = new Command("replay", "Run a recorded recipe again; on the same machine the result is identical.") { file, output };
        cmd.SetAction(async (p, cancel) =>
        {
            try
            {
                string f = p.GetValue(file)!;
                var recipe = Recipe.Load(f);
                foreach (var (path, sha) in recipe.Inputs)
                {
                    if (!File.Exists(path)) throw new BadInputException($"The recipe's input '{path}' no longer exists.");
                    if (Reverie.Models.Registry.Downloader.Sha256Of(path) != sha) throw new BadInputException($"The recipe's input '{path}' has changed since the recipe was made (SHA-256 differs).");
                }
                string stem = f.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Path.ChangeExtension(f, ".png") : f;
                string target = p.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(stem) ?? ".", Path.GetFileNameWithoutExtension(stem) + "-replay" + Path.GetExtension(stem));
                var args = new List<string> { recipe.Command };
                args.AddRange(recipe.Arguments.Skip(recipe.Arguments.Count > 0 && recipe.Arguments[0] == recipe.Command ? 1 : 0));
                args.AddRange(["-o", target]);
                return await ReverieCli.RunAsync(args.ToArray(), p.InvocationConfiguration.Output, p.InvocationConfiguration.Error);
            }
            catch (Exception ex) { return ReverieCli.Report(ex, p.InvocationConfiguration.Error); }
        });
        return cmd;
    }
}
