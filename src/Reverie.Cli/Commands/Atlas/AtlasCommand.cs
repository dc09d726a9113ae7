using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Optimization;
using Reverie.Recipes;
using Reverie.Visualization;
using Reverie.Cli.Commands.Visualize;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.Atlas;

/// <summary><c>reverie atlas --model M --layer L [--channels 0..63] -o GRID.png</c>: one visualization per channel, in a labelled grid.</summary>
internal static class AtlasCommand
{
    public static Command Create()
    {
        var common = new VisualizeCommand.Common();
        var layer = new Option<string>("--layer", "-l") { Description = "The layer.", Required = true };
        var channels = new Option<string>("--channels") { Description = "Channels: A..B, A-B or a list (default 0..63, capped at the layer's).", DefaultValueFactory = _ => "0..63" };
        var perBatch = new Option<int>("--per-batch") { Description = "Channels optimized together in one batch.", DefaultValueFactory = _ => 8 };
        var output = new Option<string>("--output", "-o") { Description = "Output grid (.png or .jpg).", Required = true };
        var cmd = new Command("atlas", "Visualize every channel of a layer, in a labelled grid.") { layer, channels, perBatch, output };
        foreach (var o in common.All) cmd.Options.Add(o);
        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            try
            {
                string outPath = p.GetValue(output)!;
                ImageIO.FormatFor(outPath);
                int per = p.GetValue(perBatch);
                if (per < 1 || per > 64) throw new BadInputException($"--per-batch must be from 1 to 64; got {per}.");
                using var net = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(common.Model)!, err, cancel);
                string name = p.GetValue(layer)!;
                string tensor = net.ResolveLayer(name);
                long count = net.Layers.First(l => l.Name == tensor || l.Aliases.Contains(tensor)).Channels;
                var list = ParseChannels(p.GetValue(channels)!, count);
                VisualizeCommand.Common.Prepare(net, common.Read(p, 1));
                var tiles = new List<Tensor>();
                for (int start = 0; start < list.Count; start += per)
                {
                    var chunk = list.Skip(start).Take(per).ToList();
                    // Each image of the batch maximizes its own channel.
                    Objective obj = chunk.Select((c, i) => (Objective)new ChannelObjective(tensor, c, name, i)).Aggregate((a, b) => a + b);
                    var options = common.Read(p, chunk.Count) with { Seed = p.GetValue(common.Seed) + start };
                    var images = await VisualizeCommand.RunWithProgress(new FeatureVisualizer(net, obj, options), $"channels {chunk[0]}-{chunk[^1]}", err, cancel);
                    tiles.Add(images);
                }
                int columns = (int)Math.Ceiling(Math.Sqrt(list.Count));
                var grid = Grid.Make(tiles, columns, list.Select(c => c.ToString(CultureInfo.InvariantCulture)).ToList());
                RecipeCapture.Recipe(p, "atlas", new JsonObject { ["model"] = net.Name, ["layer"] = name, ["channels"] = new JsonArray(list.Select(c => (JsonNode)c).ToArray()), ["steps"] = p.GetValue(common.Steps), ["precision"] = p.GetValue(common.Precision) }).SaveWithImage(grid, outPath);
                p.InvocationConfiguration.Output.WriteLine($"{outPath} ({list.Count} channels of {name})");
                return ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });
        return cmd;
    }

    /// <summary>Parses "0..63", "0-15" or "3,7,9" and caps ranges at the layer's channel count.</summary>
    internal static List<int> ParseChannels(string text, long count)
    {
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Contains("..") ? part.Split("..") : part.Split('-');
            if (range.Length is < 1 or > 2 || !range.All(r => int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                throw new BadInputException($"--channels '{text}': '{part}' is not a channel or a range like 0..63.");
            int a = int.Parse(range[0], CultureInfo.InvariantCulture), b = int.Parse(range[^1], CultureInfo.InvariantCulture);
            if (a >= count) throw new BadInputException($"--channels '{text}': channel {a} is out of range; the layer has channels 0-{count - 1}.");
            for (int c = a; c <= Math.Min(b, count - 1); c++) result.Add(c);
        }
        if (result.Count == 0) throw new BadInputException($"--channels '{text}' selects no channel.");
        return result;
    }
}
