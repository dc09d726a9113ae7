using Reverie.Models.Registry;

namespace Reverie.Cli.Commands.Models;

/// <summary><c>reverie models list | pull | info | layers | add | remove</c>.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var cmd = new Command("models", "List, download, inspect, add and remove models.");
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Pull());
        cmd.Subcommands.Add(Info());
        cmd.Subcommands.Add(Layers());
        cmd.Subcommands.Add(Add());
        cmd.Subcommands.Add(Remove());
        cmd.Subcommands.Add(Convert());
        return cmd;
    }

    static IAnsiConsole Out(ParseResult p) => ReverieCli.ResultConsole(p.InvocationConfiguration.Output);

    static void Run(Command c, Func<ParseResult, CancellationToken, Task> body) =>
        c.SetAction(async inv => { await body(inv.Parse, inv.Cancel); return ReverieCli.Ok; });

    static Argument<string> NameArg() => new("name") { Description = "Model name (see 'reverie models list')." };

    static string Size(long? bytes) => bytes is { } b ? $"{b / 1048576.0:0.0} MB" : "?";

    static Command List()
    {
        var c = new Command("list", "List known models and whether they are in the cache.");
        Run(c, (p, _) =>
        {
            var reg = ModelLoading.Registry(p);
            var t = new Table().AddColumn("name").AddColumn("size").AddColumn("status").AddColumn("description");
            foreach (var e in reg.Entries)
                t.AddRow(Markup.Escape(e.Name), Size(e.Size), reg.Status(e).ToString().ToLowerInvariant(), Markup.Escape(e.Description ?? ""));
            Out(p).Write(t);
            p.InvocationConfiguration.Output.WriteLine($"cache: {reg.CacheDir}");
            return Task.CompletedTask;
        });
        return c;
    }

    static Command Pull()
    {
        var name = NameArg();
        var force = new Option<bool>("--force") { Description = "Download again even when cached." };
        var c = new Command("pull", "Download a model's weights into the cache, checking SHA-256.") { name, force };
        Run(c, async (p, cancel) =>
        {
            var reg = ModelLoading.Registry(p);
            var e = reg.Get(p.GetValue(name)!);
            if (e.IsEmbedded || e.IsPackaged)
            {
                await reg.PullAsync(e.Name, cancel: cancel); // a packaged file that is missing: one sentence
                p.InvocationConfiguration.Output.WriteLine(e.IsEmbedded ? $"{e.Name} is built into Reverie; there is nothing to download."
                    : $"{e.Name} comes with Reverie's build ({reg.WeightsPath(e)}); there is nothing to download.");
                return;
            }
            if (!p.GetValue(force) && reg.Status(e) != ModelStatus.Missing)
            {
                p.InvocationConfiguration.Output.WriteLine($"{e.Name} is already cached: {reg.WeightsPath(e)}");
                return;
            }
            if (reg.Offline) await reg.PullAsync(e.Name, cancel: cancel); // raises the offline message
            await ModelLoading.PullWithProgressAsync(reg, e, p.InvocationConfiguration.Error, cancel, p.GetValue(force));
            p.InvocationConfiguration.Output.WriteLine($"{e.Name}: {reg.WeightsPath(e)} (SHA-256 verified)");
        });
        return c;
    }

    static Command Info()
    {
        var name = NameArg();
        var c = new Command("info", "Show a model's source, hash, input spec, labels and cache status.") { name };
        Run(c, (p, _) =>
        {
            var reg = ModelLoading.Registry(p);
            var e = reg.Get(p.GetValue(name)!);
            var rec = reg.Record(e);
            var labels = rec is null && e.Labels != "imagenet" ? null : reg.LabelsOf(e);
            var t = new Table().HideHeaders().AddColumn("").AddColumn("");
            void Row(string k, string? v) => t.AddRow(k, Markup.Escape(v ?? "-"));
            Row("name", e.Name);
            Row("description", e.Description);
            Row("format", e.Format);
            Row("url", e.Url);
            var ck = e.IsEmbedded ? Reverie.Training.Checkpoint.EmbeddedInfo(e.Name) : null;
            Row("sha256", e.Sha256 ?? ck?.WeightsSha256 ?? (e.Sha256Prefix is { } pre ? $"{pre}… (prefix published in the file name)" : null));
            Row("size", e.Size is { } s ? $"{s:N0} bytes" : null);
            var i = ck is null ? e.Input : ck.Input with { Width = ck.Architecture.InputWidth, Height = ck.Architecture.InputHeight };
            Row("input", $"{i.Width}x{i.Height} {i.Channels.ToString().ToUpperInvariant()}, x*{i.Scale.ToString(CultureInfo.InvariantCulture)} - mean [{string.Join(", ", i.Mean.Select(v => v.ToString(CultureInfo.InvariantCulture)))}] / std [{string.Join(", ", i.Std.Select(v => v.ToString(CultureInfo.InvariantCulture)))}] (mean and std in RGB order)");
            Row("labels", ck is not null ? $"{ck.Labels.Count} classes: {string.Join(", ", ck.Labels)}" : labels is null ? e.Labels : $"{labels.Count} classes ({e.Labels})");
            if (ck is not null)
            {
                Row("architecture", string.Join(" → ", ck.Architecture.Layers.Where(l => l.Type != "dropout").Select(l => l.Type is "conv" or "dense" ? $"{l.Name} {l.Out}" : l.Name ?? l.Type)));
                // A recipe records the command's words as arguments; checkpoints before 0.3 kept the whole command line as "command".
                Row("trained with", ck.Recipe?["command"] is System.Text.Json.Nodes.JsonArray cmd ? string.Join(" ", cmd.Select(a => (string?)a))
                    : ck.Recipe?["arguments"] is System.Text.Json.Nodes.JsonArray args && args.Count > 0 ? "reverie " + string.Join(" ", args.Select(a => (string?)a)) : null);
                Row("test accuracy", ck.Metrics?["testAccuracy"] is { } acc ? $"{acc.GetValue<double>() * 100:0.00}% on {ck.Metrics["testImages"]} held-out images" : null);
                Row("dream layer", ck.DreamLayer);
            }
            Row("status", reg.Status(e).ToString().ToLowerInvariant());
            if (e.IsPackaged) { Row("file", reg.Status(e) == ModelStatus.Packaged ? reg.WeightsPath(e) : null); Row("package", $"{e.Package} (NuGet)"); }
            else
            {
                Row("cached at", rec is null ? null : reg.WeightsPath(e));
                Row("installed from", rec?.Source);
            }
            Out(p).Write(t);
            return Task.CompletedTask;
        });
        return c;
    }

    static Command Layers()
    {
        var name = new Argument<string>("name") { Description = "Model name or .onnx file." };
        var layer = new Option<string?>("--layer") { Description = "Show only this layer (any of its names)." };
        var json = new Option<bool>("--json") { Description = "Print the table as JSON (one object per layer), for programs." };
        var c = new Command("layers", "Print the layer table: name, aliases, op, output shape at the model's input size, channels.") { name, layer, json };
        Run(c, async (p, cancel) =>
        {
            var reg = ModelLoading.Registry(p);
            using var net = await ModelLoading.OpenAsync(reg, p.GetValue(name)!, p.InvocationConfiguration.Error, cancel);
            var t = new Table().AddColumn("layer").AddColumn("aliases").AddColumn("op").AddColumn("shape").AddColumn(new TableColumn("channels").RightAligned());
            var rows = net.Layers.AsEnumerable();
            if (p.GetValue(layer) is { } only)
            {
                string tensor = net.ResolveLayer(only);
                rows = rows.Where(l => l.Name == only || l.Aliases.Contains(only) || l.Aliases.Contains(tensor) || l.Name == tensor);
            }
            if (p.GetValue(json))
            {
                p.InvocationConfiguration.Output.WriteLine(System.Text.Json.JsonSerializer.Serialize(
                    rows.Select(l => new { name = l.Name, aliases = l.Aliases, op = l.Op, shape = l.Shape, channels = l.Channels })));
                return;
            }
            foreach (var l in rows)
                t.AddRow(Markup.Escape(l.Name), Markup.Escape(string.Join(" ", l.Aliases)), l.Op, Markup.Escape("[" + string.Join(",", l.Shape) + "]"), l.Channels.ToString(CultureInfo.InvariantCulture));
            Out(p).Write(t);
        });
        return c;
    }

    static float[] Floats(string? s, string what)
    {
        if (s is null) return [];
        try { return s.Split(',').Select(v => float.Parse(v.Trim(), CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException) { throw new BadInputException($"{what} '{s}' is not a comma-separated list of numbers (e.g. 0.485,0.456,0.406)."); }
    }

    static Command Add()
    {
        var name = NameArg();
        var file = new Argument<string>("file") { Description = "An ONNX model file." };
        var labels = new Option<string?>("--labels") { Description = "Labels file: one class name per line." };
        var size = new Option<string?>("--size") { Description = "Input size: N or WxH (default 224)." };
        var channels = new Option<string?>("--channels") { Description = "Input channel order: rgb, bgr or gray (default rgb)." };
        var scale = new Option<float?>("--scale") { Description = "Multiplier from 0..1 to the model's range (1 or 255; default 1)." };
        var mean = new Option<string?>("--mean") { Description = "Per-channel mean in RGB order, in scaled units (e.g. 0.485,0.456,0.406)." };
        var std = new Option<string?>("--std") { Description = "Per-channel std in RGB order, in scaled units (e.g. 0.229,0.224,0.225)." };
        var force = new Option<bool>("--force") { Description = "Install a file whose SHA-256 differs from the registry's, recorded as unverified." };
        var c = new Command("add", "Install a local file as a known model's weights (offline install), or register a new ONNX model.")
            { name, file, labels, size, channels, scale, mean, std, force };
        Run(c, (p, _) =>
        {
            var reg = ModelLoading.Registry(p);
            InputSpec? spec = null;
            bool anySpec = p.GetValue(size) is not null || p.GetValue(channels) is not null || p.GetValue(scale) is not null || p.GetValue(mean) is not null || p.GetValue(std) is not null;
            string n = p.GetValue(name)!;
            if (anySpec || !reg.Contains(n))
            {
                var baseSpec = reg.Contains(n) ? reg.Get(n).Input : new InputSpec();
                int w = baseSpec.Width, h = baseSpec.Height;
                if (p.GetValue(size) is { } sz)
                {
                    var parts = sz.ToLowerInvariant().Split('x');
                    if (parts.Length is < 1 or > 2 || !parts.All(x => int.TryParse(x, out int v) && v > 0 && v <= 16384))
                        throw new BadInputException($"--size '{sz}' is not N or WxH with sides from 1 to 16384.");
                    w = int.Parse(parts[0], CultureInfo.InvariantCulture);
                    h = parts.Length == 2 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : w;
                }
                var order = p.GetValue(channels)?.ToLowerInvariant() switch
                {
                    null => baseSpec.Channels,
                    "rgb" => ChannelOrder.Rgb,
                    "bgr" => ChannelOrder.Bgr,
                    "gray" or "grey" => ChannelOrder.Gray,
                    var x => throw new BadInputException($"--channels '{x}' is not rgb, bgr or gray."),
                };
                spec = baseSpec with
                {
                    Width = w, Height = h, Channels = order,
                    Scale = p.GetValue(scale) ?? baseSpec.Scale,
                    Mean = p.GetValue(mean) is { } m ? Floats(m, "--mean") : baseSpec.Mean,
                    Std = p.GetValue(std) is { } s ? Floats(s, "--std") : baseSpec.Std,
                };
            }
            var e = reg.Add(n, p.GetValue(file)!, spec, p.GetValue(labels), p.GetValue(force));
            var st = reg.Status(e).ToString().ToLowerInvariant();
            p.InvocationConfiguration.Output.WriteLine($"{e.Name}: installed {reg.WeightsPath(e)} ({st})");
            return Task.CompletedTask;
        });
        return c;
    }

    static Command Remove()
    {
        var name = NameArg();
        var c = new Command("remove", "Delete a model's cached weights (and forget a model added by name).") { name };
        Run(c, (p, _) =>
        {
            var reg = ModelLoading.Registry(p);
            string n = p.GetValue(name)!;
            bool had = reg.Remove(n);
            p.InvocationConfiguration.Output.WriteLine(had ? $"{n}: removed" : $"{n}: nothing was cached");
            return Task.CompletedTask;
        });
        return c;
    }

    static Command Convert()
    {
        var input = new Argument<string>("in") { Description = "A PyTorch file (.pth, .pt, .bin: zip or legacy torch.save) or .safetensors." };
        var output = new Argument<string>("out") { Description = "The file to write: .safetensors or .pth (PyTorch's zip format)." };
        var c = new Command("convert", "Convert weights between PyTorch files and safetensors (PyTorch files are read without running any code).") { input, output };
        Run(c, (p, _) =>
        {
            string inPath = p.GetValue(input)!, outPath = p.GetValue(output)!;
            static bool IsSafe(string f) => f.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
            static bool IsTorch(string f) => new[] { ".pth", ".pt", ".bin", ".ckpt" }.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase));
            if (!IsSafe(outPath) && !IsTorch(outPath)) throw new BadInputException($"'{outPath}': the output must end in .safetensors or .pth.");
            if (Path.GetFullPath(inPath) == Path.GetFullPath(outPath)) throw new BadInputException("The input and the output are the same file.");
            var tensors = IsSafe(inPath) ? Reverie.Models.Torch.SafeTensors.Load(inPath) : Reverie.Models.Torch.TorchFile.Load(inPath);
            if (IsSafe(outPath)) Reverie.Models.Torch.SafeTensors.Save(outPath, tensors, new Dictionary<string, string> { ["format"] = "pt", ["converted_by"] = "reverie" });
            else Reverie.Models.Torch.TorchFileWriter.Save(outPath, tensors);
            long values = tensors.Values.Sum(t => t.numel());
            p.InvocationConfiguration.Output.WriteLine($"{outPath}: {tensors.Count} tensors, {values:N0} values (floating point as float32)");
            return Task.CompletedTask;
        });
        return c;
    }
}
