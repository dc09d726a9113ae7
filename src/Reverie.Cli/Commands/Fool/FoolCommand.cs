using System.Text;
using System.Text.Json;
using Reverie.Adversarial;
using Reverie.Visualization;
using static TorchSharp.torch;

namespace Reverie.Cli.Commands.Fool;

/// <summary><c>reverie fool</c>: evolve images a classifier is sure about although they show nothing of the class.</summary>
internal static class FoolCommand
{
    public static Command Create()
    {
        var d = new FoolingOptions();
        var model = CommonOptions.ModelOption("The classifier to fool (only its outputs are used)", null);
        var cls = new Option<string[]>("--class") { Description = "Class to fool (name or index); repeatable." };
        var all = new Option<bool>("--all-classes") { Description = "Every class of the model." };
        var encoding = new Option<string>("--encoding") { Description = "direct (one gene per pixel) or cppn (a pattern-producing network).", DefaultValueFactory = _ => "cppn" };
        var generations = new Option<int>("--generations") { Description = "Generations.", DefaultValueFactory = _ => d.Generations };
        var population = new Option<int>("--population") { Description = "Individuals per generation.", DefaultValueFactory = _ => d.Population };
        var mapElites = new Option<bool>("--map-elites") { Description = "One MAP-Elites run over all the classes (an archive cell per class) instead of one run per class." };
        var seed = CommonOptions.SeedOption("the evolution");
        var output = new Option<string>("--output", "-o") { Description = "Folder for the images, fooling.png, log.csv and results.json.", Required = true };
        var cmd = new Command("fool", "Evolve fooling images: pictures a classifier labels with high confidence that show nothing of the class (black-box: outputs only).")
            { model, cls, all, encoding, generations, population, mapElites, seed, output };
        cmd.SetAction(async inv =>
        {
            var (p, cancel, err) = (inv.Parse, inv.Cancel, inv.Err);
            var options = new FoolingOptions
            {
                Encoding = p.GetValue(encoding) switch
                {
                    "direct" => FoolingEncoding.Direct,
                    "cppn" => FoolingEncoding.Cppn,
                    var e => throw new BadInputException($"--encoding must be direct or cppn; got '{e}'."),
                },
                Generations = p.GetValue(generations), Population = p.GetValue(population), MapElites = p.GetValue(mapElites), Seed = p.GetValue(seed),
            };
            options.Validate();
            var named = p.GetValue(cls) ?? [];
            if (named.Length > 0 == p.GetValue(all)) throw new BadInputException("Name classes with --class, or use --all-classes (one of the two).");
            string dir = p.GetValue(output)!;
            if (File.Exists(dir)) throw new BadInputException($"'{dir}' is a file; --output must be a folder.");
            var registry = ModelLoading.Registry(p);
            using var net = await ModelLoading.OpenAsync(registry, p.GetValue(model)!, err, cancel);
            if (net.Labels is null) throw new BadInputException($"{net.Name} has no class labels.");
            var parser = new ObjectiveLanguage(net);
            var classes = p.GetValue(all) ? Enumerable.Range(0, net.Labels.Count).ToList()
                : named.Select(c => ((ClassObjective)parser.Parse("class:" + c)).Index).Distinct().ToList();
            if (p.GetValue(all) && net.Labels.Count > 100 && !options.MapElites)
                throw new BadInputException($"{net.Name} has {net.Labels.Count} classes; with --all-classes use --map-elites, or name classes with --class.");
            Directory.CreateDirectory(dir);
            var evo = new FoolingEvolution(net, options);
            var results = await CliRun.WithBar(err, events => evo.Run(classes, new SyncProgress<(int Done, int Total, double Best)>(s =>
                events.Report(CliRun.Step($"evolving ({(options.MapElites ? "worst class" : "best")} {s.Best:0.0000})", s.Done, s.Total, 1))), cancel));
            // Images, a labelled sheet, the log and the results.
            foreach (var r in results)
            {
                string safe = string.Concat(r.Label.Select(ch => char.IsLetterOrDigit(ch) ? char.ToLowerInvariant(ch) : '-'));
                ImageIO.Save(Upscale(r.Image), Path.Combine(dir, $"{r.Class:000}-{safe}.png"));
            }
            var sheet = Reverie.Imaging.Grid.Make(results.Select(r => Upscale(r.Image)).ToList(), Math.Min(5, results.Count),
                results.Select(r => $"{r.Class} {r.Confidence * 100:0.00}").ToList(), scale: 2);
            ImageIO.Save(sheet, Path.Combine(dir, "fooling.png"));
            var csv = new StringBuilder("generation,class,label,best_confidence,evaluations\n");
            foreach (var e in evo.Log)
                csv.Append(string.Create(CultureInfo.InvariantCulture, $"{e.Generation},{e.Class},\"{net.Labels[e.Class].Replace("\"", "'")}\",{e.BestConfidence:0.######},{e.Evaluations}\n"));
            AtomicFile.WriteAllText(Path.Combine(dir, "log.csv"), csv.ToString());
            var json = new JsonObject
            {
                ["model"] = net.Name, ["encoding"] = p.GetValue(encoding), ["generations"] = options.Generations, ["population"] = options.Population,
                ["mapElites"] = options.MapElites, ["seed"] = options.Seed,
                ["results"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject { ["class"] = r.Class, ["label"] = r.Label, ["confidence"] = r.Confidence, ["generation"] = r.Generation }).ToArray()),
            };
            AtomicFile.WriteAllText(Path.Combine(dir, "results.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("confidence").RightAligned()).AddColumn(new TableColumn("found at generation").RightAligned());
            foreach (var r in results) table.AddRow(Markup.Escape($"{r.Class} {r.Label}"), r.Confidence.ToString("0.0000", CultureInfo.InvariantCulture), r.Generation.ToString(CultureInfo.InvariantCulture));
            var o = ReverieCli.ResultConsole(p.InvocationConfiguration.Output);
            o.Write(table);
            o.WriteLine($"{results.Count(r => r.Confidence >= 0.99)} of {results.Count} classes at >= 99% confidence; {dir}/fooling.png, log.csv, results.json");
            foreach (var r in results) r.Image.Dispose();
            return ReverieCli.Ok;
        });
        return cmd;
    }

    /// <summary>Small images (e.g. 28×28) are enlarged by whole pixels so that they can be seen.</summary>
    static Tensor Upscale(Tensor img)
    {
        int f = (int)Math.Max(1, 112 / Math.Max(img.shape[2], img.shape[3]));
        return f == 1 ? img : nn.functional.interpolate(img, [img.shape[2] * f, img.shape[3] * f], mode: InterpolationMode.Nearest);
    }
}
