using System.Text.Json;

namespace Reverie.Cli.Commands.Classify;

/// <summary><c>reverie classify IMAGE... [--model NAME] [--top K] [--json]</c>: top-K labels and probabilities.</summary>
internal static class ClassifyCommand
{
    public static Command Create()
    {
        var images = new Argument<string[]>("images") { Description = "Image files (PNG, JPEG, BMP, WebP, GIF).", Arity = ArgumentArity.OneOrMore };
        var model = CommonOptions.ModelOption("Model");
        var top = new Option<int>("--top", "-k") { Description = "How many classes to show.", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var cmd = new Command("classify", "Classify images with a model: top-K labels and probabilities.") { images, model, top, json };
        cmd.SetAction(async inv =>
        {
            var (p, cancel, err) = (inv.Parse, inv.Cancel, inv.Err);
            var o = p.InvocationConfiguration.Output;
            int k = p.GetValue(top);
            if (k < 1) throw new BadInputException($"--top must be at least 1; got {k}.");
            var files = p.GetValue(images)!;
            foreach (var f in files)
                if (!File.Exists(f)) throw new BadInputException($"Image file '{f}' does not exist.");
            var registry = ModelLoading.Registry(p);
            using var net = await ModelLoading.OpenAsync(registry, p.GetValue(model)!, err, cancel);
            var results = new List<(string File, IReadOnlyList<Prediction> Top)>();
            foreach (var f in files)
            {
                // The network sees its input size: a photo four or more times larger is decoded reduced (at least twice that size).
                using var img = ImageIO.Load(f, 2 * Math.Max(net.Input.Width, net.Input.Height));
                results.Add((f, Classifier.Classify(net, img, k)));
            }
            if (p.GetValue(json))
            {
                var doc = results.Select(r => new { file = r.File, model = net.Name, top = r.Top.Select(x => new { index = x.Index, label = x.Label, probability = x.Probability }) });
                o.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                var console = ReverieCli.ResultConsole(o);
                foreach (var r in results)
                {
                    var table = new Table().Title($"{Markup.Escape(r.File)} ({Markup.Escape(net.Name)})")
                        .AddColumn("#").AddColumn("class").AddColumn(new TableColumn("probability").RightAligned()).AddColumn("");
                    int rank = 1;
                    foreach (var x in r.Top)
                        table.AddRow(rank++.ToString(), Markup.Escape(x.Label), x.Probability.ToString("0.0000"), new string('█', (int)Math.Round(x.Probability * 30)));
                    console.Write(table);
                }
            }
            return ReverieCli.Ok;
        });
        return cmd;
    }
}
