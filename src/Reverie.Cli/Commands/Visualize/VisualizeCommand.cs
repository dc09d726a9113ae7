using System.CommandLine;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Optimization;
using Reverie.Recipes;
using Reverie.Visualization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.Visualize;

/// <summary><c>reverie visualize --model M --objective EXPR -o OUT</c>: an image that maximizes an objective, from noise.</summary>
internal static class VisualizeCommand
{
    /// <summary>Options shared with <c>reverie atlas</c>.</summary>
    internal sealed class Common
    {
        public readonly Option<string> Model = new("--model", "-m") { Description = "Model name or .onnx file.", DefaultValueFactory = _ => "googlenet" };
        public readonly Option<int> Size = new("--size") { Description = "Image side in pixels.", DefaultValueFactory = _ => 224 };
        public readonly Option<int> Steps = new("--steps") { Description = "Optimization steps.", DefaultValueFactory = _ => 512 };
        public readonly Option<double> Lr = new("--lr") { Description = "Adam's learning rate.", DefaultValueFactory = _ => 0.05 };
        public readonly Option<string> Param = new("--param") { Description = "fft (decorrelated Fourier, natural-looking) or pixel.", DefaultValueFactory = _ => "fft" };
        public readonly Option<bool> NoTransforms = new("--no-transforms") { Description = "No pad/jitter/scale/rotate: the raw, unregularized ascent (with --param pixel)." };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed of the initial image and the transforms.", DefaultValueFactory = _ => 0 };
        public readonly Option<string> Precision = new("--precision") { Description = "fp32, or bf16 to run the network in bfloat16 (faster on CPUs with AVX-512 BF16; the image stays fp32).", DefaultValueFactory = _ => "fp32" };

        public IEnumerable<Option> All => [Model, Size, Steps, Lr, Param, NoTransforms, Seed, Precision];

        /// <summary>Converts the network when bf16 was asked for.</summary>
        public static void Prepare(INetwork net, VisualizeOptions options)
        {
            if (options.BFloat16) net.To(net.Device, ScalarType.BFloat16);
        }

        public VisualizeOptions Read(ParseResult p, int batch) => new()
        {
            Size = p.GetValue(Size), Steps = p.GetValue(Steps), LearningRate = p.GetValue(Lr), Batch = batch, Seed = p.GetValue(Seed),
            Transforms = !p.GetValue(NoTransforms),
            BFloat16 = p.GetValue(Precision) switch
            {
                "fp32" => false,
                "bf16" => true,
                var x => throw new BadInputException($"--precision must be fp32 or bf16; got '{x}'."),
            },
            Param = p.GetValue(Param) switch
            {
                "fft" => ImageParam.Fft,
                "pixel" => ImageParam.Pixel,
                var x => throw new BadInputException($"--param must be fft or pixel; got '{x}'."),
            },
        };
    }

    /// <summary>Runs a visualizer with a progress bar.</summary>
    internal static async Task<Tensor> RunWithProgress(FeatureVisualizer v, string label, TextWriter err, CancellationToken cancel)
    {
        Tensor result = null!;
        await ReverieCli.StatusConsole(err).Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(label, maxValue: v.Options.Steps);
                var progress = new SyncProgress<(int Step, double Value)>(s => { task.Value = s.Step; task.Description = $"{label}: {s.Value:G4}"; });
                result = await Task.Run(() => v.Run(progress, cancel));
                task.Value = task.MaxValue;
            });
        return result;
    }

    public static Command Create()
    {
        var common = new Common();
        var objective = new Option<string>("--objective", "-O") { Description = "Objective: LAYER, LAYER:CHANNEL, LAYER:CHANNEL@X,Y, class:NAME[:prob], combined with + - * (e.g. \"inception_4a/output:97 - 0.5*inception_4a/output:12\").", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Output image (.png or .jpg); a batch is written as a grid.", Required = true };
        var batch = new Option<int>("--batch") { Description = "Images optimized together.", DefaultValueFactory = _ => 1 };
        var diversity = new Option<double>("--diversity") { Description = "Weight of the diversity term across the batch (at the objective's first layer)." };
        var cmd = new Command("visualize", "Make an image that maximizes a neuron, channel, layer or class, from noise.") { objective, output, batch, diversity };
        foreach (var o in common.All) cmd.Options.Add(o);
        cmd.SetAction(async (p, cancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            try
            {
                var options = common.Read(p, p.GetValue(batch));
                options.Validate();
                string outPath = p.GetValue(output)!;
                ImageIO.FormatFor(outPath);
                double div = p.GetValue(diversity);
                if (div < 0) throw new BadInputException($"--diversity must not be negative; got {div}.");
                if (div > 0 && options.Batch < 2) throw new BadInputException("--diversity needs --batch 2 or more.");
                using var net = await ModelLoading.OpenAsync(ModelLoading.Registry(p), p.GetValue(common.Model)!, err, cancel);
                string expr = p.GetValue(objective)!;
                var obj = new ObjectiveParser(net).Parse(expr);
                Common.Prepare(net, options);
                if (div > 0) obj = obj + div * new DiversityObjective(obj.Layers.First(), "diversity");
                var images = await RunWithProgress(new FeatureVisualizer(net, obj, options), "visualizing", err, cancel);
                var picture = options.Batch == 1 ? images : Reverie.Imaging.Grid.Make([images], (int)Math.Ceiling(Math.Sqrt(options.Batch)));
                var recipe = RecipeCapture.Recipe(p, "visualize", new JsonObject
                    {
                        ["model"] = net.Name, ["objective"] = obj.Describe(), ["size"] = options.Size, ["steps"] = options.Steps,
                        ["lr"] = options.LearningRate, ["batch"] = options.Batch, ["diversity"] = div, ["param"] = options.Param.ToString().ToLowerInvariant(),
                        ["transforms"] = options.Transforms, ["seed"] = options.Seed, ["precision"] = options.BFloat16 ? "bf16" : "fp32",
                    });
                recipe.SaveWithImage(picture, outPath);
                p.InvocationConfiguration.Output.WriteLine($"{outPath} ({obj.Describe()})");
                return ReverieCli.Ok;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });
        return cmd;
    }
}
