using Reverie.Style;

namespace Reverie.Cli.Commands.Stylize;

/// <summary><c>reverie stylize IMAGE --net NET.onnx -o OUT</c> and <c>reverie stylize train</c>: fast feed-forward style transfer.</summary>
internal static class StylizeCommand
{
    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = "The photo to stylize, or a video (.mp4, .mov, .mkv, .webm ...) to stylize frame by frame." };
        var net = new Option<string>("--net") { Description = "A style network in ONNX (from 'reverie stylize train', or a Johnson-style net exported by PyTorch).", Required = true };
        var tile = new Option<int>("--tile") { Description = "Images larger than this are done tile by tile; 0 never.", DefaultValueFactory = _ => 1024 };
        var maxSize = new Option<int>("--max-size") { Description = "Shrink the photo so its longest side is at most this; 0 keeps it.", DefaultValueFactory = _ => 0 };
        var output = CommonOptions.Output("Output image (.png or .jpg), or .mp4 for a video.");
        var video = new CommonOptions.VideoFlags();
        var cmd = new Command("stylize", "Fast style transfer: one forward pass of a trained style network.") { image, net, tile, maxSize, output, CommonOptions.Force, video.Flow, video.Blend };
        cmd.Subcommands.Add(Train());
        cmd.SetJob(new StylizeJob(), output, p => new StylizeJobOptions
        {
            Model = Path.GetFullPath(p.GetValue(net)!),
            Image = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
            Tile = p.GetValue(tile),
            MaxSize = p.GetValue(maxSize),
            Video = video.Parse(p),
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
        var output = CommonOptions.Output("The trained network (.onnx); its recipe and losses go beside it in .recipe.json.");
        var cmd = new Command("train", "Train a fast style network for one style with a perceptual loss.")
            { style, data, lossModel, epochs, size, batch, crops, lr, cw, sw, tvw, cl, sl, seed, output };
        static string[] Split(string? s) => s is null ? [] : s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        cmd.SetJob(new StylizeTrainJob(), output, p => new StylizeTrainJobOptions
        {
            Model = p.GetValue(lossModel),
            Seed = p.GetValue(seed),
            Style = CommonOptions.InputFile(p.GetValue(style)!, "style image"),
            Data = Path.GetFullPath(p.GetValue(data)!),
            Training = new FastStyleOptions
            {
                Epochs = p.GetValue(epochs), Size = p.GetValue(size), Batch = p.GetValue(batch), CropsPerImage = p.GetValue(crops),
                LearningRate = p.GetValue(lr), ContentWeight = p.GetValue(cw), StyleWeight = p.GetValue(sw), TvWeight = p.GetValue(tvw),
                ContentLayers = Split(p.GetValue(cl)), StyleLayers = Split(p.GetValue(sl)),
            },
        });
        return cmd;
    }
}
