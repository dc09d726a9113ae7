using Reverie.Optimization;
using Reverie.Visualization;

namespace Reverie.Cli.Commands.Visualize;

/// <summary><c>reverie visualize --model M --objective EXPR -o OUT</c>: an image that maximizes an objective, from noise.</summary>
internal static class VisualizeCommand
{
    /// <summary>The optimization options shared with <c>reverie atlas</c>.</summary>
    internal sealed class Settings
    {
        public readonly CommonOptions Common = new(seedMeaning: "the initial image and the transforms");
        public readonly Option<int> Size, Steps;
        public readonly Option<double> Lr;
        public readonly Option<string> Step = new("--step") { Description = "Step rule: adam (Lucid's), normalized (DeepDream's), lbfgs, sgd or sign.", DefaultValueFactory = _ => "adam" };
        public readonly Option<string> Param = new("--param") { Description = "fft (decorrelated Fourier, natural-looking) or pixel.", DefaultValueFactory = _ => "fft" };
        public readonly Option<bool> NoTransforms = new("--no-transforms") { Description = "No pad/jitter/scale/rotate: the raw, unregularized ascent (with --param pixel)." };

        /// <param name="defaults">The defaults of size, steps and learning rate (visualize's own when null).</param>
        public Settings(VisualizeOptions? defaults = null)
        {
            var d = defaults ?? new VisualizeOptions();
            Size = new("--size") { Description = "Image side in pixels.", DefaultValueFactory = _ => d.Size };
            Steps = new("--steps") { Description = "Optimization steps.", DefaultValueFactory = _ => d.Steps };
            Lr = new("--lr") { Description = "The step rule's learning rate (Adam's; the step per mean |g| for normalized).", DefaultValueFactory = _ => d.LearningRate };
        }

        public void AddTo(Command cmd)
        {
            foreach (var o in new Option[] { Size, Steps, Lr, Step, Param, NoTransforms }) cmd.Options.Add(o);
            Common.AddTo(cmd);
        }

        public VisualizeOptions Read(ParseResult p, int batch) => new()
        {
            Size = p.GetValue(Size), Steps = p.GetValue(Steps), LearningRate = p.GetValue(Lr), Batch = batch,
            Transforms = !p.GetValue(NoTransforms),
            Step = StepRules.Parse(p.GetValue(Step)!),
            Param = p.GetValue(Param) switch
            {
                "fft" => ImageParam.Fft,
                "pixel" => ImageParam.Pixel,
                var x => throw new BadInputException($"--param must be fft or pixel; got '{BadInputException.Shown(x)}'."),
            },
        };
    }

    public static Command Create()
    {
        var settings = new Settings();
        var objective = new Option<string>("--objective", "-O") { Description = "Objective: LAYER, LAYER:CHANNEL (its mean), LAYER:CHANNEL@X,Y, l2(LAYER:CHANNELS), class:NAME[:prob], tv, combined with + - * (e.g. \"inception_4a/output:97 - 0.5*inception_4a/output:12\").", Required = true };
        var output = CommonOptions.Output("Output image (.png or .jpg); a batch is written as a grid.");
        var batch = new Option<int>("--batch") { Description = "Images optimized together.", DefaultValueFactory = _ => 1 };
        var diversity = new Option<double>("--diversity") { Description = "Weight of the diversity term across the batch (at the objective's first layer)." };
        var cmd = new Command("visualize", "Make an image that maximizes a neuron, channel, layer or class, from noise.") { objective, output, batch, diversity };
        settings.AddTo(cmd);
        cmd.SetJob(new VisualizeJob(), output, p => settings.Common.Apply(p, new VisualizeJobOptions
        {
            Objective = p.GetValue(objective)!,
            Diversity = p.GetValue(diversity),
            Visualize = settings.Read(p, p.GetValue(batch)),
        }));
        return cmd;
    }
}
