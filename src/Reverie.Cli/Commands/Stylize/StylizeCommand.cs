using System.Diagnostics;
using System.Text.Json;
using Reverie.Style;

namespace Reverie.Cli.Commands.Stylize;

/// <summary><c>reverie stylize IMAGE --net NET.onnx -o OUT</c> and <c>reverie stylize train</c>: fast feed-forward style transfer.</summary>
internal static class StylizeCommand
{
    static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".webp", ".bmp"];

    /// <summary>Default perceptual-loss layers: Johnson et al.'s for VGG names, their GoogLeNet counterparts otherwise.</summary>
    internal static (string[] Content, string[] Style) DefaultLayers(INetwork net)
    {
        if (net.HasLayer("relu2_2")) return (["relu2_2"], ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]);
        if (net.HasLayer("inception_3a/output")) return (["inception_3a/output"], ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_4a/output"]);
        throw new BadInputException($"Model '{net.Name}' has no default loss layers; give --content-layers and --style-layers.");
    }

    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = "The photo to stylize." };
        var net = new Option<string>("--net") { Description = "A style network in ONNX (from 'reverie stylize train', or a Johnson-style net exported by PyTorch).", Required = true };
        var tile = new Option<int>("--tile") { Description = "Images larger than this are done tile by tile; 0 never.", DefaultValueFactory = _ => 1024 };
        var maxSize = new Option<int>("--max-size") { Description = "Shrink the photo so its longest side is at most this; 0 keeps it.", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "Output image (.png or .jpg).", Required = true };
        var cmd = new Command("stylize", "Fast style transfer: one forward pass of a trained style network.") { image, net, tile, maxSize, output, CommonOptions.Force };
        cmd.Subcommands.Add(Train());
        cmd.SetAction(inv =>
        {
            var p = inv.Parse;
            var options = new StylizeJobOptions
            {
                Model = Path.GetFullPath(p.GetValue(net)!),
                Image = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
                Tile = p.GetValue(tile),
                MaxSize = p.GetValue(maxSize),
            };
            return CliRun.RunJob(inv, new StylizeJob(), options, p.GetValue(output)!);
        });
        return cmd;
    }

    static Command Train()
    {
        var d = new FastStyleOptions();
        var style = new Option<string>("--style") { Description = "The style image.", Required = true };
        var data = new Option<string>("--data") { Description = "A folder of training photos (PNG, JPEG, WebP, BMP; searched recursively).", Required = true };
        var lossModel = new Option<string>("--loss-model") { Description = "The loss network: a model name or .onnx file.", DefaultValueFactory = _ => "googlenet" };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data.", DefaultValueFactory = _ => d.Epochs };
        var size = new Option<int>("--size") { Description = "Side of the training crops (a multiple of 4).", DefaultValueFactory = _ => d.Size };
        var batch = new Option<int>("--batch") { Description = "Crops per batch.", DefaultValueFactory = _ => d.Batch };
        var crops = new Option<int>("--crops") { Description = "Random crops per photo per epoch.", DefaultValueFactory = _ => d.CropsPerImage };
        var lr = new Option<double>("--lr") { Description = "Adam's learning rate.", DefaultValueFactory = _ => d.LearningRate };
        var cw = new Option<double>("--content-weight") { Description = "Weight of the content loss.", DefaultValueFactory = _ => d.ContentWeight };
        var sw = new Option<double>("--style-weight") { Description = "Weight of the style loss.", DefaultValueFactory = _ => d.StyleWeight };
        var tvw = new Option<double>("--tv-weight") { Description = "Weight of the total-variation loss.", DefaultValueFactory = _ => d.TvWeight };
        var cl = new Option<string?>("--content-layers") { Description = "Comma-separated content layers of the loss network." };
        var sl = new Option<string?>("--style-layers") { Description = "Comma-separated style layers of the loss network." };
        var seed = CommonOptions.SeedOption("the weights and the crops");
        var output = new Option<string>("--output", "-o") { Description = "The trained network (.onnx); its losses go beside it in .json.", Required = true };
        var cmd = new Command("train", "Train a fast style network for one style with a perceptual loss.")
            { style, data, lossModel, epochs, size, batch, crops, lr, cw, sw, tvw, cl, sl, seed, output };
        cmd.SetAction(async inv =>
        {
            var (p, cancel, err) = (inv.Parse, inv.Cancel, inv.Err);
            string outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--output must end in .onnx; got '{outPath}'.");
            string dir = p.GetValue(data)!;
            if (!Directory.Exists(dir)) throw new BadInputException($"Data folder '{dir}' does not exist.");
            var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new BadInputException($"Data folder '{dir}' has no PNG, JPEG, WebP or BMP images.");
            using var styleImage = ImageIO.Load(p.GetValue(style)!);
            var images = files.Select(f => ImageIO.Load(f)).ToList();
            using var loss = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(lossModel)!, err, cancel);
            var (dc, ds) = DefaultLayers(loss);
            static string[] Split(string? s, string[] def) => s is null ? def : s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var options = new FastStyleOptions
            {
                Epochs = p.GetValue(epochs), Size = p.GetValue(size), Batch = p.GetValue(batch), CropsPerImage = p.GetValue(crops),
                LearningRate = p.GetValue(lr), ContentWeight = p.GetValue(cw), StyleWeight = p.GetValue(sw), TvWeight = p.GetValue(tvw),
                ContentLayers = Split(p.GetValue(cl), dc), StyleLayers = Split(p.GetValue(sl), ds), Seed = p.GetValue(seed),
            };
            var trainer = new FastStyleTrainer(loss, styleImage, images, options);
            await CliRun.WithBar(err, events =>
            {
                trainer.Run(new SyncProgress<(FastStyleLoss Loss, int Iterations)>(s => events.Report(
                    CliRun.Step($"epoch {s.Loss.Epoch}: content {s.Loss.Content:G3} style {s.Loss.Style:G3} tv {s.Loss.Tv:G3}", s.Loss.Iteration, s.Iterations, 1))), cancel);
                return 0;
            });
            Reverie.Imaging.AtomicFile.WriteAllBytes(outPath, trainer.Net.ToOnnx());
            var h = trainer.History;
            int k = Math.Max(1, Math.Min(10, h.Count / 4));
            double first = h.Take(k).Average(l => l.Total), last = h.TakeLast(k).Average(l => l.Total);
            var report = new JsonObject
            {
                ["command"] = "stylize train", ["style"] = Path.GetFullPath(p.GetValue(style)!), ["data"] = Path.GetFullPath(dir), ["images"] = files.Count,
                ["lossModel"] = loss.Name, ["epochs"] = options.Epochs, ["size"] = options.Size, ["batch"] = options.Batch, ["crops"] = options.CropsPerImage,
                ["lr"] = options.LearningRate, ["contentWeight"] = options.ContentWeight, ["styleWeight"] = options.StyleWeight, ["tvWeight"] = options.TvWeight,
                ["contentLayers"] = string.Join(",", options.ContentLayers), ["styleLayers"] = string.Join(",", options.StyleLayers), ["seed"] = options.Seed,
                ["lossFirst"] = first, ["lossLast"] = last, ["skippedSteps"] = trainer.Skipped,
                ["history"] = new JsonArray(h.Select(l => (JsonNode)new JsonObject { ["iteration"] = l.Iteration, ["content"] = l.Content, ["style"] = l.Style, ["tv"] = l.Tv, ["total"] = l.Total }).ToArray()),
            };
            Reverie.Imaging.AtomicFile.WriteAllText(Path.ChangeExtension(outPath, ".json"), report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            p.InvocationConfiguration.Output.WriteLine($"{outPath} ({h.Count} iterations; perceptual loss {first:G4} over the first {k}, {last:G4} over the last {k})");
            return cancel.IsCancellationRequested ? 130 : ReverieCli.Ok;
        });
        return cmd;
    }
}
