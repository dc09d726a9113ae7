using Reverie.Style;

namespace Reverie.Cli.Commands.Style;

/// <summary><c>reverie style CONTENT STYLE[:WEIGHT]... -o OUT</c> (Gatys) and <c>reverie style grid</c>.</summary>
internal static class StyleCommand
{
    /// <summary>The transfer options shared by <c>style</c> and <c>style grid</c>.</summary>
    internal sealed class Settings
    {
        static readonly StyleOptions D = new();
        public readonly CommonOptions Common = new(modelHelp: "Loss network: a registry name, checkpoint, weights or .onnx file (default: googlenet).", seedMeaning: "the noise init");
        public readonly Option<string?> ContentLayers = new("--content-layers") { Description = "Comma-separated content layers (default: relu4_2 for VGG, inception_4a/output for GoogLeNet)." };
        public readonly Option<string?> StyleLayers = new("--style-layers") { Description = "Comma-separated style layers (default: relu1_1..relu5_1 for VGG; conv1, conv2, 3a, 3b, 4a for GoogLeNet)." };
        public readonly Option<double> ContentWeight = new("--content-weight") { Description = "Weight of the content loss.", DefaultValueFactory = _ => D.ContentWeight };
        public readonly Option<double> StyleWeight = new("--style-weight") { Description = "Weight of the style loss.", DefaultValueFactory = _ => D.StyleWeight };
        public readonly Option<double> TvWeight = new("--tv-weight") { Description = "Weight of the total-variation loss.", DefaultValueFactory = _ => D.TvWeight };
        public readonly Option<string> Optimizer = new("--optimizer") { Description = "lbfgs or adam.", DefaultValueFactory = _ => "lbfgs" };
        public readonly Option<int> Steps = new("--steps") { Description = "Iterations.", DefaultValueFactory = _ => D.Steps };
        public readonly Option<string> Init = new("--init") { Description = "content or noise.", DefaultValueFactory = _ => "content" };
        public readonly Option<int> Size = new("--size") { Description = "Longest side of the result in pixels.", DefaultValueFactory = _ => D.Size };
        public readonly Option<double> StyleScale = new("--style-scale") { Description = "Size of the style image relative to the result.", DefaultValueFactory = _ => D.StyleScale };
        public readonly Option<bool> OriginalColors = new("--original-colors") { Description = "Keep the content's colours (transfer luminance only)." };
        public readonly Option<double> Lr = new("--lr") { Description = "Adam's learning rate (0..1 image units).", DefaultValueFactory = _ => D.LearningRate };
        public readonly Option<string> LossScale = new("--loss-scale") { Description = "auto (neural-style's raw terms on VGG, normalized terms elsewhere), neural-style, or normalized (each term divided by its size on the targets, so that the weights mean the same on every network).", DefaultValueFactory = _ => "auto" };

        public void AddTo(Command cmd, bool grid)
        {
            foreach (var o in new Option[] { ContentLayers, StyleLayers, ContentWeight, StyleWeight, TvWeight, Optimizer, Steps, Init, Size, StyleScale, OriginalColors, Lr, LossScale })
                if (!grid || (o != ContentLayers && o != ContentWeight)) cmd.Options.Add(o);
            Common.AddTo(cmd);
        }

        static string[] Split(string? s) => s is null ? [] : s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

        public StyleOptions Read(ParseResult p) => new()
        {
            ContentWeight = p.GetValue(ContentWeight), StyleWeight = p.GetValue(StyleWeight), TvWeight = p.GetValue(TvWeight),
            Optimizer = p.GetValue(Optimizer) switch
            {
                "lbfgs" => StyleOptimizer.Lbfgs,
                "adam" => StyleOptimizer.Adam,
                var x => throw new BadInputException($"--optimizer must be lbfgs or adam; got '{BadInputException.Shown(x)}'."),
            },
            Steps = p.GetValue(Steps),
            InitFromContent = p.GetValue(Init) switch
            {
                "content" => true,
                "noise" => false,
                var x => throw new BadInputException($"--init must be content or noise; got '{BadInputException.Shown(x)}'."),
            },
            Size = p.GetValue(Size), StyleScale = p.GetValue(StyleScale), OriginalColors = p.GetValue(OriginalColors), LearningRate = p.GetValue(Lr),
            ContentLayers = Split(p.GetValue(ContentLayers)), StyleLayers = Split(p.GetValue(StyleLayers)),
            LossScale = p.GetValue(LossScale)!,
        };
    }

    /// <summary>Parses STYLE[:WEIGHT] (the weight is what follows the last colon, when it is a number).</summary>
    internal static StyleImage ParseStyle(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && !File.Exists(spec) && double.TryParse(spec[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double w))
        {
            if (!(w > 0) || !double.IsFinite(w)) throw new BadInputException($"Style weight in '{BadInputException.Shown(spec)}' must be above 0.");
            return new StyleImage(CommonOptions.InputFile(spec[..colon], "style image"), w);
        }
        return new StyleImage(CommonOptions.InputFile(spec, "style image"));
    }

    public static Command Create()
    {
        var settings = new Settings();
        var content = new Argument<string>("content") { Description = "The content photo, or a video (.mp4, .mov, .mkv, .webm ...) to style frame by frame at --size." };
        var styles = new Argument<string[]>("styles") { Description = "Style images, each optionally FILE:WEIGHT (several blend by weight).", Arity = ArgumentArity.OneOrMore };
        var output = CommonOptions.Output("Output image (.png or .jpg), or .mp4 for a video.");
        var saveEvery = new Option<int>("--save-every") { Description = "Also save the image every N iterations (OUT-N.png); 0 never.", DefaultValueFactory = _ => 0 };
        var video = new CommonOptions.VideoFlags();
        var cmd = new Command("style", "Style transfer by optimization (Gatys et al.): the content of one image in the style of others.")
            { content, styles, output, saveEvery, video.Flow, video.Blend };
        settings.AddTo(cmd, grid: false);
        cmd.Subcommands.Add(Grid());
        cmd.SetJob(new StyleJob(), output, p => settings.Common.Apply(p, new StyleJobOptions
        {
            Content = CommonOptions.InputFile(p.GetValue(content)!, "content photo"),
            Styles = p.GetValue(styles)!.Select(ParseStyle).ToList(),
            SaveEvery = p.GetValue(saveEvery),
            Style = settings.Read(p),
            Video = video.Parse(p),
        }));
        return cmd;
    }

    /// <summary>What a style grid is made of: the content photo, the style image, the rows and the columns (shared with <c>batch plan style-grid</c>).</summary>
    internal sealed class GridInputs
    {
        readonly Argument<string> _content = new("content") { Description = "The content photo." };
        readonly Argument<string> _style = new("style") { Description = "The style image." };
        readonly Option<string> _layers = new("--layers") { Description = "Comma-separated content layers, one row each.", Required = true };
        readonly Option<string> _ratios = new("--ratios") { Description = "Comma-separated content/style weight ratios, one column each.", DefaultValueFactory = _ => "1e-4,1e-3,1e-2" };
        public readonly Settings Settings = new();

        public void AddTo(Command cmd)
        {
            cmd.Arguments.Add(_content);
            cmd.Arguments.Add(_style);
            cmd.Options.Add(_layers);
            cmd.Options.Add(_ratios);
            Settings.AddTo(cmd, grid: true);
        }

        public StyleGridJobOptions Read(ParseResult p)
        {
            var rows = p.GetValue(_layers)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var cols = p.GetValue(_ratios)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(r => double.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v) ? v
                    : throw new BadInputException($"--ratios: '{BadInputException.Shown(r)}' is not a positive number.")).ToList();
            return Settings.Common.Apply(p, new StyleGridJobOptions
            {
                Content = CommonOptions.InputFile(p.GetValue(_content)!, "content photo"),
                StyleImage = CommonOptions.InputFile(p.GetValue(_style)!, "style image"),
                Rows = rows, Ratios = cols, Style = Settings.Read(p),
            });
        }
    }

    static Command Grid()
    {
        var inputs = new GridInputs();
        var output = CommonOptions.Output("Output grid (.png or .jpg).");
        var cmd = new Command("grid", "Rows of content layers by columns of content/style ratios (Gatys et al.'s figure).") { output };
        inputs.AddTo(cmd);
        cmd.SetJob(new StyleGridJob(), output, inputs.Read, show: (inv, options, r) =>
        {
            if (r.Results is not StyleGridResults g) return;
            var t = new Table().AddColumn("content layer");
            foreach (var c in options.Ratios) t.AddColumn(new TableColumn($"ratio {c:G3}").RightAligned());
            for (int i = 0; i < g.StyleLoss.Count; i++) t.AddRow([Markup.Escape(options.Rows[i]), .. g.StyleLoss[i].Select(v => v.ToString("G4", CultureInfo.InvariantCulture))]);
            inv.Results.Write(t);
        });
        return cmd;
    }
}
