using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Recipes;
using Reverie.Visualization;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.DreamTarget;

/// <summary><c>reverie dream-target --target class:NAME[=p] [--from noise|IMAGE] -o OUT</c>: gradient descent toward a target output.</summary>
internal static class DreamTargetCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model name or .onnx file.", DefaultValueFactory = _ => "googlenet" };
        var target = new Option<string>("--target", "-t") { Description = "class:NAME or class:INDEX, optionally =P for the target probability (default 1).", Required = true };
        var from = new Option<string>("--from") { Description = "noise (default) or an image to start from.", DefaultValueFactory = _ => "noise" };
        var steps = new Option<int>("--steps") { Description = "Gradient steps (stops early once the target probability is reached).", DefaultValueFactory = _ => 200 };
        var lr = new Option<double>("--lr") { Description = "Step size of plain gradient descent.", DefaultValueFactory = _ => 50 };
        var seed = new Option<int>("--seed") { Description = "Seed of the starting noise.", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "Output image (.png or .jpg).", Required = true };
        var cmd = new Command("dream-target", "Dream toward a target output: pixels pushed until the network reports the class (from noise it stays noise).")
            { model, target, from, steps, lr, seed, output };
        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            try
            {
                string outPath = p.GetValue(output)!;
                ImageIO.FormatFor(outPath);
                string spec = p.GetValue(target)!;
                double prob = 1;
                int eq = spec.LastIndexOf('=');
                if (eq > 0)
                {
                    if (!double.TryParse(spec[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out prob) || prob <= 0 || prob > 1)
                        throw new BadInputException($"--target '{spec}': the probability after '=' must be above 0 and at most 1.");
                    spec = spec[..eq];
                }
                if (!spec.StartsWith("class:", StringComparison.OrdinalIgnoreCase)) throw new BadInputException($"--target '{spec}' must be class:NAME or class:INDEX.");
                using var net = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(model)!, err, cancel);
                var cls = (ClassObjective)new ObjectiveParser(net).Parse(spec);
                string start = p.GetValue(from)!;
                using var initial = start == "noise"
                    ? rand(new long[] { 1, 3, net.Input.Height, net.Input.Width }, generator: new Generator((ulong)p.GetValue(seed)))
                    : ImageIO.Load(start);
                var options = new TargetDreamOptions { Steps = p.GetValue(steps), LearningRate = p.GetValue(lr) };
                var (image, reached, taken) = await Task.Run(() => TargetDream.Run(net, cls.Index, prob, initial, options, cancel: cancel));
                RecipeCapture.Recipe(p, "dream-target", new JsonObject { ["model"] = net.Name, ["target"] = cls.Describe(), ["p"] = prob, ["from"] = start, ["steps"] = taken, ["lr"] = options.LearningRate, ["reached"] = reached }).SaveWithImage(image, outPath);
                p.InvocationConfiguration.Output.WriteLine($"{outPath}: p({net.Labels?[cls.Index] ?? cls.Index.ToString(CultureInfo.InvariantCulture)}) = {reached:0.0000} after {taken} steps");
                return ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });
        return cmd;
    }
}
