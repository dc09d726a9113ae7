using Reverie.Explaining;

namespace Reverie.Cli.Commands.Activations;

/// <summary><c>reverie activations IMAGE --layer L</c>: the channels a photo drives most, where they fire and what they respond to.</summary>
internal static class ActivationsCommand
{
    public static Command Create()
    {
        var d = new ActivationsJobOptions { Image = "", Layer = "" };
        var common = new CommonOptions(seedMeaning: "the feature visualizations");
        var image = new Argument<string>("image") { Description = "The photo (resized to the network's input, as classify does)." };
        var output = CommonOptions.Output("Output image (.png or .jpg): for each channel, its activation map over the photo and its feature visualization.");
        var layer = new Option<string>("--layer", "-l") { Description = "The layer (one with channels and positions; see 'reverie models layers').", Required = true };
        var top = new Option<int>("--top", "-k") { Description = "How many channels, the most active first.", DefaultValueFactory = _ => d.Top };
        var size = new Option<int>("--size") { Description = "Side of the feature visualizations in pixels.", DefaultValueFactory = _ => d.Visualize.Size };
        var steps = new Option<int>("--steps") { Description = "Optimization steps of each feature visualization.", DefaultValueFactory = _ => d.Visualize.Steps };
        var noCache = new Option<bool>("--no-cache") { Description = "Make the feature visualizations again instead of reusing the cached ones (and do not cache them)." };
        var cmd = new Command("activations", "The channels of a layer this photo drives most: where in the photo each fires, and what it responds to (its feature visualization, cached).")
            { image, output, layer, top, size, steps, noCache, CommonOptions.Force };
        common.AddTo(cmd);
        cmd.SetJob(new ActivationsJob(), output, p => common.Apply(p, new ActivationsJobOptions
        {
            Image = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
            Layer = p.GetValue(layer)!,
            Top = p.GetValue(top),
            Visualize = d.Visualize with { Size = p.GetValue(size), Steps = p.GetValue(steps) },
            Cache = !p.GetValue(noCache),
        }), show: (inv, options, r) =>
        {
            if (r.Results is not ActivationsResults results) return;
            var table = new Table().Title($"{Markup.Escape(results.Model)}: the channels of {Markup.Escape(results.Layer)} ({results.Channels}) this photo drives most")
                .AddColumn("channel").AddColumn(new TableColumn("mean").RightAligned()).AddColumn(new TableColumn("above the layer's mean").RightAligned())
                .AddColumn(new TableColumn("max").RightAligned()).AddColumn("visualization");
            foreach (var a in results.Top)
                table.AddRow(a.Channel.ToString(CultureInfo.InvariantCulture), a.Mean.ToString("G4", CultureInfo.InvariantCulture),
                    a.Z.ToString("+0.0;-0.0", CultureInfo.InvariantCulture) + " σ", a.Max.ToString("G4", CultureInfo.InvariantCulture), a.CachedVisualization ? "cached" : "made");
            inv.Results.Write(table);
        });
        return cmd;
    }
}
