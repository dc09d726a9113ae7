using Reverie.Explaining;

namespace Reverie.Cli.Commands.Explain;

/// <summary><c>reverie explain IMAGE --method M -o OUT</c>: why the network answered what it did, as maps over the photo.</summary>
internal static class ExplainCommand
{
    public static Command Create()
    {
        var d = new ExplainJobOptions { Image = "" };
        var common = new CommonOptions(seedMeaning: "SmoothGrad's noise and the noise baseline");
        var image = new Argument<string>("image") { Description = "The photo (resized to the network's input, as classify does)." };
        var output = CommonOptions.Output("Output image (.png or .jpg): the photo with the map over it; the raw map goes beside it as .npy (float32).");
        var cls = new Option<string>("--class", "-c") { Description = "The class to explain: a label (_ or quotes for spaces), an index, or top (the network's answer).", DefaultValueFactory = _ => d.Class };
        var methods = new Option<string[]>("--method", "--methods") { Description = $"Method: {string.Join(", ", ExplainJobOptions.AllMethods)}, or all (a contact sheet); repeatable or comma-separated.", DefaultValueFactory = _ => ["gradcam"], AllowMultipleArgumentsPerToken = false };
        var layer = new Option<string?>("--layer", "-l") { Description = "Grad-CAM's layer (default: the last layer with a spatial extent)." };
        var steps = new Option<int>("--steps") { Description = "Integrated gradients: steps along the path.", DefaultValueFactory = _ => d.Steps };
        var baseline = new Option<string>("--baseline") { Description = "Integrated gradients' starting image: black, blur or noise.", DefaultValueFactory = _ => d.Baseline };
        var samples = new Option<int>("--samples") { Description = "SmoothGrad: noisy copies averaged.", DefaultValueFactory = _ => d.Samples };
        var noise = new Option<double>("--noise") { Description = "SmoothGrad: the noise's σ as a fraction of the image's range.", DefaultValueFactory = _ => d.Noise };
        var window = new Option<int>("--window") { Description = "Occlusion: the gray square's side, in pixels of the network's input.", DefaultValueFactory = _ => d.Window };
        var stride = new Option<int>("--stride") { Description = "Occlusion: the step between squares.", DefaultValueFactory = _ => d.Stride };
        var superpixels = new Option<int>("--superpixels") { Description = "LIME: about how many superpixels (SLIC) the photo is cut into.", DefaultValueFactory = _ => d.Superpixels };
        var perturbations = new Option<int>("--perturbations") { Description = "LIME: samples with a random half of the superpixels hidden.", DefaultValueFactory = _ => d.Perturbations };
        var features = new Option<int>("--features") { Description = "LIME: how many superpixels (largest positive weights) the picture shows.", DefaultValueFactory = _ => d.Features };
        var limeFill = new Option<string>("--lime-fill") { Description = "LIME: what a hidden superpixel shows: mean (its own mean colour, LIME's default; blind to flat-coloured regions) or gray.", DefaultValueFactory = _ => d.LimeFill };
        var curves = new Option<bool>("--curves") { Description = "Deletion and insertion curves of every map and of a random order: their areas, and a plot beside the picture (OUT-curves.png)." };
        var top = new Option<int>("--top", "-k") { Description = "How many top classes to show.", DefaultValueFactory = _ => d.Top };
        var cmd = new Command("explain", "Why the network answered what it did: attribution maps (gradients, integrated gradients, Grad-CAM, occlusion, LIME) over the photo.")
            { image, output, cls, methods, layer, steps, baseline, samples, noise, window, stride, superpixels, perturbations, features, limeFill, curves, top, CommonOptions.Force };
        common.AddTo(cmd);
        cmd.SetJob(new ExplainJob(), output, p =>
        {
            var names = p.GetValue(methods)!.SelectMany(m => m.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
            return common.Apply(p, new ExplainJobOptions
            {
                Image = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
                Class = p.GetValue(cls)!,
                Methods = names.Contains("all") ? ExplainJobOptions.AllMethods : names.Distinct().ToList(),
                Layer = p.GetValue(layer),
                Steps = p.GetValue(steps), Baseline = p.GetValue(baseline)!, Samples = p.GetValue(samples), Noise = p.GetValue(noise),
                Window = p.GetValue(window), Stride = p.GetValue(stride), Top = p.GetValue(top),
                Superpixels = p.GetValue(superpixels), Perturbations = p.GetValue(perturbations), Features = p.GetValue(features), LimeFill = p.GetValue(limeFill)!,
                Curves = p.GetValue(curves),
            });
        }, show: (inv, options, r) =>
        {
            if (r.Results is not ExplainResults results) return;
            var table = new Table().Title($"{Markup.Escape(results.Model)}: explaining '{Markup.Escape(results.Explained.Label)}' ({Markup.Escape(results.Score)})")
                .AddColumn("#").AddColumn("class").AddColumn(new TableColumn("probability").RightAligned());
            int rank = 1;
            foreach (var t in results.Top) table.AddRow(rank++.ToString(), Markup.Escape(t.Label), t.P.ToString("0.0000"));
            inv.Results.Write(table);
            foreach (var m in results.Maps.Where(m => m.AttributionSum is not null))
                inv.Out.WriteLine($"integrated gradients: attributions sum to {m.AttributionSum:G5}; score(image) - score(baseline) = {m.ScoreDelta:G5}");
            if (results.Random is { } random)
            {
                var auc = new Table().Title($"deletion and insertion ({Curves.Portions + 1} points each; probability of '{Markup.Escape(results.Explained.Label)}')")
                    .AddColumn("order").AddColumn(new TableColumn("deletion area (lower: more faithful)").RightAligned()).AddColumn(new TableColumn("insertion area (higher: more faithful)").RightAligned());
                foreach (var m in results.Maps.Where(m => m.DeletionAuc is not null))
                    auc.AddRow(Markup.Escape(m.Title), m.DeletionAuc!.Value.ToString("0.000"), m.InsertionAuc!.Value.ToString("0.000"));
                auc.AddRow($"random order (mean of {Curves.RandomOrders})", random.Deletion.ToString("0.000"), random.Insertion.ToString("0.000"));
                inv.Results.Write(auc);
            }
            foreach (var m in results.Maps.Where(m => m.Fit is not null))
                inv.Out.WriteLine($"LIME: {m.Superpixels} superpixels; the weighted linear model's R² on its samples is {m.Fit:0.000}");
        });
        return cmd;
    }
}
