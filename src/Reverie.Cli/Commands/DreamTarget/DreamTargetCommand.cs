using Reverie.Visualization;

namespace Reverie.Cli.Commands.DreamTarget;

/// <summary><c>reverie dream-target --target class:NAME[=p] [--from noise|IMAGE] -o OUT</c>: gradient descent toward a target output.</summary>
internal static class DreamTargetCommand
{
    public static Command Create()
    {
        var d = new TargetDreamOptions();
        var common = new CommonOptions(seedMeaning: "the starting noise");
        var target = new Option<string>("--target", "-t") { Description = "class:NAME or class:INDEX, optionally =P for the target probability (default 1).", Required = true };
        var from = new Option<string>("--from") { Description = "noise (default) or an image to start from.", DefaultValueFactory = _ => "noise" };
        var steps = new Option<int>("--steps") { Description = "Gradient steps (stops early once the target probability is reached).", DefaultValueFactory = _ => d.Steps };
        var lr = new Option<double>("--lr") { Description = "Step size of plain gradient descent.", DefaultValueFactory = _ => d.LearningRate };
        var output = CommonOptions.Output("Output image (.png or .jpg).");
        var cmd = new Command("dream-target", "Dream toward a target output: pixels pushed until the network reports the class (from noise it stays noise).")
            { target, from, steps, lr, output };
        common.AddTo(cmd);
        cmd.SetJob(new DreamTargetJob(), output, p => common.Apply(p, new DreamTargetJobOptions
        {
            Target = p.GetValue(target)!,
            From = p.GetValue(from) is "noise" ? "noise" : CommonOptions.InputFile(p.GetValue(from)!, "start image"),
            Descent = new TargetDreamOptions { Steps = p.GetValue(steps), LearningRate = p.GetValue(lr) },
        }));
        return cmd;
    }
}
