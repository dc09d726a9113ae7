using Reverie.Recipes;

namespace Reverie.Cli;

/// <summary>What every command records so that <c>reverie replay</c> can run it again.</summary>
internal static class RecipeCapture
{
    /// <summary>
    /// The command's tokens without its output locations (replay chooses its own), with every file
    /// argument made absolute so that a replay from another folder finds it, and the SHA-256 of
    /// each such file so that a replay refuses changed inputs.
    /// </summary>
    public static (List<string> Arguments, Dictionary<string, string> Inputs) From(ParseResult p, bool hash = true)
    {
        var tokens = p.Tokens.Select(t => t.Value).ToList();
        var args = new List<string>();
        var inputs = new Dictionary<string, string>();
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i] is "-o" or "--output" or "--snapshots") { i++; continue; }
            string t = tokens[i];
            if (File.Exists(t))
            {
                t = Path.GetFullPath(t);
                if (hash) inputs[t] = Reverie.Models.Registry.Downloader.Sha256Of(t);
            }
            else if (t.LastIndexOf(':') is > 0 and var colon && File.Exists(t[..colon]))
            {
                // FILE:WEIGHT, as style images are given.
                string file = Path.GetFullPath(t[..colon]);
                if (hash) inputs[file] = Reverie.Models.Registry.Downloader.Sha256Of(file);
                t = file + t[colon..];
            }
            args.Add(t);
        }
        return (args, inputs);
    }

    /// <summary>A recipe for the command being run.</summary>
    public static Recipe Recipe(ParseResult p, string command, System.Text.Json.Nodes.JsonObject parameters)
    {
        var (args, inputs) = From(p);
        return new Recipe { Command = command, Arguments = args, Inputs = inputs, Parameters = parameters };
    }
}
