using Reverie.Cli.Commands.Visualize;
using Reverie.Visualization;

namespace Reverie.Cli.Commands.Atlas;

/// <summary><c>reverie atlas --model M --layer L [--channels 0..63] -o GRID.png</c>: one visualization per channel, in a labelled grid.</summary>
internal static class AtlasCommand
{
    public static Command Create()
    {
        var settings = new VisualizeCommand.Settings();
        var layer = new Option<string>("--layer", "-l") { Description = "The layer.", Required = true };
        var channels = new Option<string>("--channels") { Description = "Channels: A..B, A-B or a list (default 0..63, capped at the layer's).", DefaultValueFactory = _ => "0..63" };
        var perBatch = new Option<int>("--per-batch") { Description = "Channels optimized together in one batch.", DefaultValueFactory = _ => 8 };
        var cache = new Option<bool>("--cache") { Description = "Keep each channel's visualization in the model cache and reuse what is there (shared with reverie activations and the studio's microscope)." };
        var output = CommonOptions.Output("Output grid (.png or .jpg).");
        var cmd = new Command("atlas", "Visualize every channel of a layer, in a labelled grid.") { layer, channels, perBatch, cache, output };
        settings.AddTo(cmd);
        cmd.SetJob(new AtlasJob(), output, p => settings.Common.Apply(p, new AtlasJobOptions
        {
            Layer = p.GetValue(layer)!, Channels = p.GetValue(channels)!, PerBatch = p.GetValue(perBatch), Visualize = settings.Read(p, 1), Cache = p.GetValue(cache),
        }));
        return cmd;
    }
}
