using Reverie.Adversarial;

namespace Reverie.Cli.Commands.Attack;

/// <summary><c>reverie attack IMAGE --model M -o OUT</c>: an L∞-bounded adversarial example, white-box or transferred from a surrogate.</summary>
internal static class AttackCommand
{
    public static Command Create()
    {
        var image = new Argument<string?>("image") { Description = "The photo to attack (or use --data).", Arity = ArgumentArity.ZeroOrOne };
        var data = new Option<string?>("--data") { Description = "Attack a labelled data set instead (fashion-mnist, textures, or an ImageFolder): reports robust accuracy, success rate and confidence." };
        var classes = new Option<string?>("--classes") { Description = "With --data: only these classes, comma-separated." };
        var limit = CommonOptions.Limit("With --data: at most this many images per class");
        var model = CommonOptions.ModelOption("The model attacked");
        var method = new Option<string>("--method") { Description = "fgsm, bim, pgd, mifgsm (L-infinity), pgd-l2 (eps is then an L2 radius) deepfool (the smallest L2 change it finds; eps, if given, caps it), deepfool-linf (the same in L-infinity), cw (Carlini-Wagner L2, the smallest change; no eps), square (L-infinity black box: reads only the probabilities; --steps is its query budget, default 1000), apgd-ce or apgd-dlr (Auto-PGD, L-infinity, its own step size; 100 steps by default; apgd-dlr with --target is APGD-T), hopskipjump (L2 black box: reads only the top label; the smallest change it finds; --steps is its query budget, default 1000; eps, if given, bounds it).", DefaultValueFactory = _ => "fgsm" };
        var eps = new Option<double>("--eps") { Description = "L-infinity budget in 0..1 pixel units (pgd-l2: the L2 radius, in the same units, default 1; deepfool, deepfool-linf, cw, hopskipjump: a cap, none by default).", DefaultValueFactory = _ => 0.01 };
        var steps = new Option<int>("--steps") { Description = "Iterations (default 10; deepfool 50, cw 100 per search, apgd 100); square, hopskipjump: queries per image (default 1000).", DefaultValueFactory = _ => 10 };
        var stepSize = new Option<double?>("--step-size") { Description = "Step size (default eps/steps)." };
        var targeted = new Option<bool>("--targeted") { Description = "Push toward --target instead of away from the true label." };
        var target = new Option<string?>("--target") { Description = "Target class (name or index) for --targeted." };
        var surrogate = new Option<string?>("--surrogate") { Description = "Craft on this model instead (black-box transfer) and report the target model's answer." };
        var randomStart = new Option<bool>("--random-start") { Description = "Start from a random point in the eps-ball (always on for pgd)." };
        var minEps = new Option<bool>("--min-eps") { Description = "Also report the smallest eps (0.001 steps, up to 0.05) at which one-step FGSM changes the top label." };
        var seed = CommonOptions.SeedOption("the random start");
        var overshoot = new Option<double>("--overshoot") { Description = "deepfool: how far past the boundary, as a fraction of the step.", DefaultValueFactory = _ => 0.02 };
        var searches = new Option<int>("--searches") { Description = "cw: binary-search steps over c (each runs --steps Adam steps, starting where the last search ended).", DefaultValueFactory = _ => 9 };
        var confidence = new Option<double>("--confidence") { Description = "cw: kappa, how far past the boundary the logit margin must go.", DefaultValueFactory = _ => 0 };
        var atInputSize = new Option<bool>("--at-input-size") { Description = "Attack (and save) the photo shrunk to the network's input size, as before 0.3; by default the photo keeps its size and the resize is part of the attack." };
        var output = new Option<string?>("--output", "-o") { Description = "The adversarial image (.png); the amplified perturbation goes beside it as OUT-perturbation.png. Required for an image." };
        var cmd = new Command("attack", "Make an adversarial example: a small L-infinity change that changes the model's answer; or attack a whole data set.")
            { image, data, classes, limit, model, method, eps, steps, stepSize, targeted, target, surrogate, randomStart, minEps, overshoot, searches, confidence, atInputSize, seed, output, CommonOptions.Force };
        cmd.Subcommands.Add(SweepCommand.Create());
        cmd.Subcommands.Add(BenchmarkCommand.Create());
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            var m = AttackMethods.Parse(p.GetValue(method)!);
            // Each method has its own defaults: the methods that look for the smallest change take eps only
            // as a cap (none unless given), pgd-l2's eps is an L2 radius.
            double epsValue = p.GetResult(eps) is null or { Implicit: true } ? AttackMethods.DefaultEps(m) : p.GetValue(eps);
            int stepsValue = p.GetResult(steps) is null or { Implicit: true } ? AttackMethods.DefaultSteps(m) : p.GetValue(steps);
            if (p.GetValue(targeted) != (p.GetValue(target) is not null))
                throw new BadInputException("--targeted and --target go together.");
            if (p.GetValue(image) is null == p.GetValue(data) is null) throw new BadInputException("Give either an IMAGE or --data DATA to attack.");
            string? outPath = p.GetValue(output);
            var attack = new AttackOptions
            {
                Method = m, Eps = epsValue, Steps = stepsValue, StepSize = p.GetValue(stepSize), Overshoot = p.GetValue(overshoot), Searches = p.GetValue(searches), Confidence = p.GetValue(confidence),
                RandomStart = p.GetValue(randomStart) ? true : null,
            };
            if (p.GetValue(image) is not null)
            {
                if (outPath is null) throw new BadInputException("Attacking an image needs --output OUT.png.");
                ImageIO.FormatFor(outPath);
                var job = new AttackJobOptions
                {
                    Input = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
                    Model = CommonOptions.ModelName(p.GetValue(model)!), Seed = p.GetValue(seed), Surrogate = p.GetValue(surrogate) is { } sg ? CommonOptions.ModelName(sg) : null, TargetClass = p.GetValue(target), MinEps = p.GetValue(minEps), AtInputSize = p.GetValue(atInputSize),
                    Attack = attack,
                };
                return await CliRun.RunJob(inv, new AttackJob(), job, outPath!, show: r =>
                {
                    if (r.Results is not AttackResults a) return;
                    var table = new Table().AddColumn("").AddColumn("top-1").AddColumn(new TableColumn("p").RightAligned());
                    table.AddRow("before", Markup.Escape(a.Before.Label), a.Before.P.ToString("0.0000", CultureInfo.InvariantCulture));
                    table.AddRow("after (the saved image)", Markup.Escape(a.After.Label), a.After.P.ToString("0.0000", CultureInfo.InvariantCulture));
                    var console = ReverieCli.ResultConsole(p.InvocationConfiguration.Output);
                    console.Write(table);
                    console.WriteLine($"{(a.Before.Index == a.After.Index ? "label unchanged" : "label changed")}; {a.Width}x{a.Height}, |x*-x|inf = {a.Linf:0.0000} ({a.Levels} of 255 levels), L2 {a.L2:0.000}, {(a.Eps == 0 && AttackMethods.Entries.First(x => x.Name == a.Method).OptionalEps ? "no cap" : $"eps {a.Eps}")}, PSNR {a.Psnr:0.0} dB" +
                        (a.Surrogate is null ? "" : $"; crafted on {a.Surrogate}") + (a.Queries is { } q ? $"; {q:0} queries" : "") + (job.MinEps ? $"; smallest FGSM eps that changes the label: {(a.SmallestFgsmEps is { } e ? e.ToString("0.000", CultureInfo.InvariantCulture) : "none up to 0.05")}" : ""));
                });
            }
            var dataJob = new AttackDataJobOptions
            {
                Data = Directory.Exists(p.GetValue(data)!) ? Path.GetFullPath(p.GetValue(data)!) : p.GetValue(data)!,
                Classes = p.GetValue(classes), Limit = p.GetValue(limit),
                Model = CommonOptions.ModelName(p.GetValue(model)!), Seed = p.GetValue(seed),
                Surrogate = p.GetValue(surrogate) is { } sg2 ? CommonOptions.ModelName(sg2) : null, TargetClass = p.GetValue(target),
                Attack = attack,
            };
            // Without -o nothing is written: the table and the summary are the product.
            return await CliRun.RunJob(inv, new AttackDataJob(), dataJob, outPath ?? "", show: r =>
            {
                if (r.Results is not AttackDataResults { Result: var row }) return;
                var tbl = new Table().AddColumn("images").AddColumn("clean accuracy").AddColumn("robust accuracy").AddColumn("success rate").AddColumn("mean confidence").AddColumn("max |x*-x|inf");
                tbl.AddRow(row.Count.ToString(CultureInfo.InvariantCulture), row.CleanAccuracy.ToString("P2", CultureInfo.InvariantCulture), row.Accuracy.ToString("P2", CultureInfo.InvariantCulture),
                    row.SuccessRate.ToString("P2", CultureInfo.InvariantCulture), row.MeanConfidence.ToString("0.0000", CultureInfo.InvariantCulture), row.MaxLinf.ToString("0.00000", CultureInfo.InvariantCulture));
                inv.Results.Write(tbl);
            });
        });
        return cmd;
    }
}
