using System.CommandLine;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Recipes;
using Reverie.Visualization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.Invert;

/// <summary><c>reverie invert IMAGE --layer L|--layers all -o OUT</c>: reconstruct a photo from its features at a layer.</summary>
internal static class InvertCommand
{
    static readonly string[] GoogLeNetDepth = ["conv1/7x7_s2", "conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output",
        "inception_4b/output", "inception_4c/output", "inception_4d/output", "inception_4e/output", "inception_5a/output", "inception_5b/output"];

    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = "The photo whose features are inverted." };
        var model = new Option<string>("--model", "-m") { Description = "Model name or .onnx file.", DefaultValueFactory = _ => "googlenet" };
        var layer = new Option<string?>("--layer", "-l") { Description = "The layer to invert." };
        var layers = new Option<string?>("--layers") { Description = "'all' (GoogLeNet's conv1 ... inception_5b) or a comma-separated list: a contact sheet across depth." };
        var steps = new Option<int>("--steps") { Description = "Adam steps per layer.", DefaultValueFactory = _ => 300 };
        var size = new Option<int>("--size") { Description = "Side of the (square) photo.", DefaultValueFactory = _ => 224 };
        var seed = new Option<int>("--seed") { Description = "Seed of the starting noise.", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "Output image (.png or .jpg).", Required = true };
        var cmd = new Command("invert", "Reconstruct a photo from its features at a layer (Mahendran and Vedaldi), from noise.")
            { image, model, layer, layers, steps, size, seed, output };
        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            try
            {
                string outPath = p.GetValue(output)!;
                ImageIO.FormatFor(outPath);
                int side = p.GetValue(size);
                if (side < 32 || side > 1024) throw new BadInputException($"--size must be from 32 to 1024; got {side}.");
                var list = p.GetValue(layers) is { } ls ? (ls == "all" ? GoogLeNetDepth : ls.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    : p.GetValue(layer) is { } one ? [one] : throw new BadInputException("Give --layer NAME or --layers all.");
                using var photo = ImageIO.Resize(ImageIO.Load(p.GetValue(image)!), side, side);
                using var net = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(model)!, err, cancel);
                foreach (var l in list) net.ResolveLayer(l);
                var options = new InversionOptions { Steps = p.GetValue(steps), Seed = p.GetValue(seed) };
                var results = new List<(string Layer, Tensor Image, double Loss, double Psnr, double Ssim)>();
                foreach (var l in list)
                {
                    Tensor img = null!; double loss = 0;
                    await ReverieCli.StatusConsole(err).Progress().StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask(l, maxValue: options.Steps);
                        var progress = new SyncProgress<(int Step, double Loss)>(s => { task.Value = s.Step; task.Description = $"{l}: {s.Loss:0.000}"; });
                        (img, loss) = await Task.Run(() => Inversion.Run(net, l, photo, options, progress, cancel));
                    });
                    results.Add((l, img, loss, Filters.Psnr(img, photo), Inversion.Ssim(img, photo)));
                }
                var picture = results.Count == 1 ? results[0].Image
                    : Reverie.Imaging.Grid.Make([photo, .. results.Select(r => r.Image)], Math.Min(6, results.Count + 1), ["photo", .. results.Select(r => r.Layer)]);
                var table = new Table().AddColumn("layer").AddColumn(new TableColumn("feature loss").RightAligned()).AddColumn(new TableColumn("PSNR dB").RightAligned()).AddColumn(new TableColumn("SSIM").RightAligned());
                foreach (var r in results) table.AddRow(Markup.Escape(r.Layer), r.Loss.ToString("0.000"), r.Psnr.ToString("0.0"), r.Ssim.ToString("0.000"));
                ReverieCli.ResultConsole(p.InvocationConfiguration.Output).Write(table);
                RecipeCapture.Recipe(p, "invert", new JsonObject
                    {
                        ["model"] = net.Name, ["steps"] = options.Steps, ["size"] = side, ["seed"] = options.Seed,
                        ["results"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject { ["layer"] = r.Layer, ["featureLoss"] = r.Loss, ["psnr"] = r.Psnr, ["ssim"] = r.Ssim }).ToArray()),
                    }).SaveWithImage(picture, outPath);
                p.InvocationConfiguration.Output.WriteLine(outPath);
                return ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });
        return cmd;
    }
}
