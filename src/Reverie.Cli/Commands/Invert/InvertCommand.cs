using Reverie.Optimization;
using Reverie.Visualization;

namespace Reverie.Cli.Commands.Invert;

/// <summary><c>reverie invert IMAGE --layer L|--layers all -o OUT</c>: reconstruct a photo from its features at a layer.</summary>
internal static class InvertCommand
{
    public static Command Create()
    {
        var d = new InversionOptions();
        var common = new CommonOptions(seedMeaning: "the starting noise");
        var image = new Argument<string>("image") { Description = "The photo whose features are inverted." };
        var layer = new Option<string?>("--layer", "-l") { Description = "The layer to invert." };
        var layers = new Option<string?>("--layers") { Description = "'all' (GoogLeNet's conv1 ... inception_5b) or a comma-separated list: a contact sheet across depth." };
        var steps = new Option<int>("--steps") { Description = "Steps per layer.", DefaultValueFactory = _ => d.Steps };
        var lr = new Option<double>("--lr") { Description = "The step rule's learning rate (decayed by a cosine to a tenth).", DefaultValueFactory = _ => d.LearningRate };
        var step = new Option<string>("--step") { Description = "Step rule: adam, lbfgs (give --lr 1), normalized or sgd.", DefaultValueFactory = _ => "adam" };
        var size = new Option<int>("--size") { Description = "Side of the (square) photo.", DefaultValueFactory = _ => 224 };
        var output = CommonOptions.Output("Output image (.png or .jpg).");
        var cmd = new Command("invert", "Reconstruct a photo from its features at a layer (Mahendran and Vedaldi), from noise.")
            { image, layer, layers, steps, lr, step, size, output };
        common.AddTo(cmd);
        cmd.SetJob(new InvertJob(), output, p =>
        {
            var list = p.GetValue(layers) is { } ls ? (ls == "all" ? InvertJobOptions.GoogLeNetDepth : ls.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                : p.GetValue(layer) is { } one ? [one] : throw new BadInputException("Give --layer NAME or --layers all.");
            return common.Apply(p, new InvertJobOptions
            {
                Input = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
                Layers = list.ToList(),
                Size = p.GetValue(size),
                Inversion = new InversionOptions { Steps = p.GetValue(steps), LearningRate = p.GetValue(lr), Step = StepRules.Parse(p.GetValue(step)!) },
            });
        }, show: (inv, options, r) =>
        {
            if (r.Results is not InvertResults results) return;
            var table = new Table().AddColumn("layer").AddColumn(new TableColumn("feature loss").RightAligned()).AddColumn(new TableColumn("PSNR dB").RightAligned()).AddColumn(new TableColumn("SSIM").RightAligned());
            foreach (var l in results.Layers) table.AddRow(Markup.Escape(l.Layer), l.FeatureLoss.ToString("0.000"), l.Psnr.ToString("0.0"), l.Ssim.ToString("0.000"));
            inv.Results.Write(table);
        });
        return cmd;
    }
}
