using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Style;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.Style;

/// <summary><c>reverie style CONTENT STYLE[:WEIGHT]... -o OUT</c> (Gatys) and <c>reverie style grid</c>.</summary>
internal static class StyleCommand
{
    /// <summary>Default layers for a network: neural-style's for VGG names, their GoogLeNet counterparts otherwise.</summary>
    internal static (string[] Content, string[] Style) DefaultLayers(INetwork net)
    {
        if (net.HasLayer("relu4_2")) return (["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]);
        if (net.HasLayer("inception_4a/output"))
            return (["inception_4a/output"], ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output"]);
        throw new BadInputException($"Model '{net.Name}' has no default style layers; give --content-layers and --style-layers.");
    }

    internal sealed class Common
    {
        public readonly Option<string> Model = new("--model", "-m") { Description = "Loss network: a model name or .onnx file.", DefaultValueFactory = _ => "googlenet" };
        public readonly Option<string?> ContentLayers = new("--content-layers") { Description = "Comma-separated content layers (default: relu4_2 for VGG, inception_4a/output for GoogLeNet)." };
        public readonly Option<string?> StyleLayers = new("--style-layers") { Description = "Comma-separated style layers (default: relu1_1..relu5_1 for VGG; conv1, conv2, 3a, 3b, 4a for GoogLeNet)." };
        public readonly Option<double> ContentWeight = new("--content-weight") { Description = "Weight of the content loss.", DefaultValueFactory = _ => 5 };
        public readonly Option<double> StyleWeight = new("--style-weight") { Description = "Weight of the style loss.", DefaultValueFactory = _ => 100 };
        public readonly Option<double> TvWeight = new("--tv-weight") { Description = "Weight of the total-variation loss.", DefaultValueFactory = _ => 1e-3 };
        public readonly Option<string> Optimizer = new("--optimizer") { Description = "lbfgs or adam.", DefaultValueFactory = _ => "lbfgs" };
        public readonly Option<int> Steps = new("--steps") { Description = "Iterations.", DefaultValueFactory = _ => 1000 };
        public readonly Option<string> Init = new("--init") { Description = "content or noise.", DefaultValueFactory = _ => "content" };
        public readonly Option<int> Size = new("--size") { Description = "Longest side of the result in pixels.", DefaultValueFactory = _ => 512 };
        public readonly Option<double> StyleScale = new("--style-scale") { Description = "Size of the style image relative to the result.", DefaultValueFactory = _ => 1.0 };
        public readonly Option<bool> OriginalColors = new("--original-colors") { Description = "Keep the content's colours (transfer luminance only)." };
        public readonly Option<double> Lr = new("--lr") { Description = "Adam's learning rate (0..1 image units).", DefaultValueFactory = _ => 10.0 / 255 };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed of the noise init.", DefaultValueFactory = _ => 0 };

        public IEnumerable<Option> All => [Model, ContentLayers, StyleLayers, ContentWeight, StyleWeight, TvWeight, Optimizer, Steps, Init, Size, StyleScale, OriginalColors, Lr, Seed];

        public StyleOptions Read(ParseResult p, INetwork net)
        {
            var (dc, ds) = DefaultLayers(net);
            static string[] Split(string? s, string[] d) => s is null ? d : s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var o = new StyleOptions
            {
                ContentWeight = p.GetValue(ContentWeight), StyleWeight = p.GetValue(StyleWeight), TvWeight = p.GetValue(TvWeight),
                Optimizer = p.GetValue(Optimizer) switch
                {
                    "lbfgs" => StyleOptimizer.Lbfgs,
                    "adam" => StyleOptimizer.Adam,
                    var x => throw new BadInputException($"--optimizer must be lbfgs or adam; got '{x}'."),
                },
                Steps = p.GetValue(Steps),
                InitFromContent = p.GetValue(Init) switch
                {
                    "content" => true,
                    "noise" => false,
                    var x => throw new BadInputException($"--init must be content or noise; got '{x}'."),
                },
                Size = p.GetValue(Size), StyleScale = p.GetValue(StyleScale), OriginalColors = p.GetValue(OriginalColors),
                LearningRate = p.GetValue(Lr), Seed = p.GetValue(Seed),
                ContentLayers = Split(p.GetValue(ContentLayers), dc), StyleLayers = Split(p.GetValue(StyleLayers), ds),
            };
            foreach (var l in o.ContentLayers.Concat(o.StyleLayers)) net.ResolveLayer(l);
            o.Validate();
            return o;
        }

        public JsonObject Describe(StyleOptions o, INetwork net) => new()
        {
            ["model"] = net.Name, ["contentLayers"] = string.Join(",", o.ContentLayers), ["styleLayers"] = string.Join(",", o.StyleLayers),
            ["contentWeight"] = o.ContentWeight, ["styleWeight"] = o.StyleWeight, ["tvWeight"] = o.TvWeight,
            ["optimizer"] = o.Optimizer.ToString().ToLowerInvariant(), ["steps"] = o.Steps, ["init"] = o.InitFromContent ? "content" : "noise",
            ["size"] = o.Size, ["styleScale"] = o.StyleScale, ["originalColors"] = o.OriginalColors, ["lr"] = o.LearningRate, ["seed"] = o.Seed,
        };
    }

    /// <summary>Parses STYLE[:WEIGHT] (the weight is what follows the last colon, when it is a number).</summary>
    internal static (string Path, double Weight) ParseStyle(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && !File.Exists(spec) && double.TryParse(spec[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double w))
        {
            if (!(w > 0) || !double.IsFinite(w)) throw new BadInputException($"Style weight in '{spec}' must be above 0.");
            return (spec[..colon], w);
        }
        return (spec, 1.0);
    }

    /// <summary>Runs a transfer with a progress bar showing the losses.</summary>
    internal static async Task<Tensor> RunWithProgress(StyleTransfer t, string label, TextWriter err, CancellationToken cancel, int every = 0, Action<int, Tensor>? snapshot = null)
    {
        Tensor result = null!;
        await ReverieCli.StatusConsole(err).Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(label, maxValue: t.Options.Steps);
                var progress = new SyncProgress<StyleLosses>(l =>
                {
                    task.Value = l.Step;
                    task.Description = $"{label}: content {l.Content:G3} style {l.Style:G3} tv {l.Tv:G3}";
                });
                result = await Task.Run(() => t.Run(progress, cancel, every, snapshot));
                task.Value = task.MaxValue;
            });
        return result;
    }

    public static Command Create()
    {
        var common = new Common();
        var content = new Argument<string>("content") { Description = "The content photo." };
        var styles = new Argument<string[]>("styles") { Description = "Style images, each optionally FILE:WEIGHT (several blend by weight).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "Output image (.png or .jpg).", Required = true };
        var saveEvery = new Option<int>("--save-every") { Description = "Also save the image every N iterations (OUT-N.png); 0 never.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("style", "Style transfer by optimization (Gatys et al.): the content of one image in the style of others.")
            { content, styles, output, saveEvery };
        foreach (var o in common.All) cmd.Options.Add(o);
        cmd.Subcommands.Add(Grid(common));
        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            try
            {
                string outPath = p.GetValue(output)!;
                ImageIO.FormatFor(outPath);
                int every = p.GetValue(saveEvery);
                if (every < 0) throw new BadInputException($"--save-every must not be negative; got {every}.");
                using var contentImage = ImageIO.Load(p.GetValue(content)!);
                var styleImages = p.GetValue(styles)!.Select(ParseStyle).Select(s => (ImageIO.Load(s.Path), s.Weight)).ToList();
                using var net = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(common.Model)!, err, cancel);
                var options = common.Read(p, net);
                var transfer = new StyleTransfer(net, contentImage, styleImages, options);
                string stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!, Path.GetFileNameWithoutExtension(outPath));
                var result = await RunWithProgress(transfer, "styling", err, cancel, every,
                    (step, image) => ImageIO.Save(image, $"{stem}-{step}{Path.GetExtension(outPath)}"));
                var recipe = RecipeCapture.Recipe(p, "style", common.Describe(options, net));
                var final = transfer.History.LastOrDefault();
                if (final is not null)
                    recipe.Parameters["final"] = new JsonObject { ["content"] = final.Content, ["style"] = final.Style, ["tv"] = final.Tv, ["total"] = final.Total, ["iterations"] = final.Step };
                recipe.SaveWithImage(result, outPath);
                p.InvocationConfiguration.Output.WriteLine(final is null ? outPath
                    : $"{outPath} (content {final.Content:G4}, style {final.Style:G4}, tv {final.Tv:G4} after {final.Step} iterations; style loss {transfer.History[0].Style:G4} at the first)");
                return cancel.IsCancellationRequested ? 130 : ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });
        return cmd;
    }

    static Command Grid(Common common)
    {
        var content = new Argument<string>("content") { Description = "The content photo." };
        var style = new Argument<string>("style") { Description = "The style image." };
        var layers = new Option<string>("--layers") { Description = "Comma-separated content layers, one row each.", Required = true };
        var ratios = new Option<string>("--ratios") { Description = "Comma-separated content/style weight ratios, one column each.", DefaultValueFactory = _ => "1e-4,1e-3,1e-2" };
        var output = new Option<string>("--output", "-o") { Description = "Output grid (.png or .jpg).", Required = true };
        var cmd = new Command("grid", "Rows of content layers by columns of content/style ratios (Gatys et al.'s figure).") { content, style, layers, ratios, output };
        foreach (var o in common.All.Where(o => o != common.ContentLayers && o != common.ContentWeight)) cmd.Options.Add(o);
        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            try
            {
                string outPath = p.GetValue(output)!;
                ImageIO.FormatFor(outPath);
                var rows = p.GetValue(layers)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                var cols = p.GetValue(ratios)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(r => double.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v) ? v
                        : throw new BadInputException($"--ratios: '{r}' is not a positive number.")).ToList();
                if (rows.Length == 0 || cols.Count == 0) throw new BadInputException("--layers and --ratios need at least one value each.");
                using var contentImage = ImageIO.Load(p.GetValue(content)!);
                using var styleImage = ImageIO.Load(p.GetValue(style)!);
                using var net = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(common.Model)!, err, cancel);
                var baseOptions = common.Read(p, net);
                foreach (var l in rows) net.ResolveLayer(l);
                var (images, table) = await RunGrid(net, contentImage, styleImage, rows, cols, baseOptions, err, cancel);
                var labels = rows.SelectMany(l => cols.Select(r => $"{l} {r:G2}")).ToList();
                var grid = Reverie.Imaging.Grid.Make(images, cols.Count, labels);
                var recipe = RecipeCapture.Recipe(p, "style grid", common.Describe(baseOptions, net));
                recipe.Parameters["rows"] = string.Join(",", rows);
                recipe.Parameters["ratios"] = string.Join(",", cols.Select(c => c.ToString("R", CultureInfo.InvariantCulture)));
                recipe.Parameters["styleLoss"] = new JsonArray(table.Select(r => (JsonNode)new JsonArray(r.Select(v => (JsonNode)v).ToArray())).ToArray());
                recipe.SaveWithImage(grid, outPath);
                var t = new Table().AddColumn("content layer");
                foreach (var r in cols) t.AddColumn(new TableColumn($"ratio {r:G3}").RightAligned());
                for (int i = 0; i < rows.Length; i++) t.AddRow([Markup.Escape(rows[i]), .. table[i].Select(v => v.ToString("G4", CultureInfo.InvariantCulture))]);
                var result = ReverieCli.ResultConsole(p.InvocationConfiguration.Output);
                result.Write(t);
                result.WriteLine($"{outPath} (style loss per cell above)");
                return ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });
        return cmd;
    }

    /// <summary>One transfer per (content layer, ratio): content weight = ratio × style weight. Returns the images and the final style losses.</summary>
    internal static async Task<(List<Tensor> Images, double[][] StyleLoss)> RunGrid(INetwork net, Tensor content, Tensor style, IReadOnlyList<string> rows,
        IReadOnlyList<double> ratios, StyleOptions baseOptions, TextWriter err, CancellationToken cancel)
    {
        var images = new List<Tensor>();
        var losses = new double[rows.Count][];
        for (int i = 0; i < rows.Count; i++)
        {
            losses[i] = new double[ratios.Count];
            for (int j = 0; j < ratios.Count; j++)
            {
                var o = baseOptions with { ContentLayers = [rows[i]], ContentWeight = ratios[j] * baseOptions.StyleWeight };
                var t = new StyleTransfer(net, content, [(style, 1.0)], o);
                images.Add(await RunWithProgress(t, $"{rows[i]} ratio {ratios[j]:G3}", err, cancel));
                losses[i][j] = t.Measure(images[^1]).Style;
            }
        }
        return (images, losses);
    }
}
