using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models.Registry;
using Reverie.Recipes;
using Reverie.Video;
using Reverie.Visualization;
using static TorchSharp.torch;

namespace Reverie.Batch;

/// <summary>What merging made: the product's folder, its index, and how many files it holds.</summary>
internal sealed record MergeReport(string Folder, string Index, int Files, int Cached);

/// <summary>
/// Builds a batch's product from its finished items, refusing while any is not done. The product is
/// made in a temporary folder beside its place and renamed there, so a merge cut short leaves the
/// previous product (or none), never half of one.
/// </summary>
internal static class BatchMerge
{
    /// <summary>Items that are not done (missing, failed or corrupt), with their state.</summary>
    public static List<(BatchItem Item, ItemState State)> Unfinished(BatchManifest m) =>
        [.. m.Items.Select(i => (i, BatchRunner.StateOf(m, i))).Where(x => x.Item2 != ItemState.Done)];

    /// <summary>
    /// Moves the files of the previous product that this merge did not make again (files the user put
    /// there: notes, edits, other pictures) into the new product, so that merging again loses nothing.
    /// </summary>
    static void KeepOthers(string old, string product)
    {
        foreach (var f in Directory.EnumerateFiles(old, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            string target = Path.Combine(product, Path.GetRelativePath(old, f));
            if (File.Exists(target) || Directory.Exists(target)) continue; // the product's own name: the new product's file
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Move(f, target);
        }
    }

    /// <summary>Merges; <paramref name="toCache"/> also puts a microscope's tiles into the channel cache, where <c>reverie studio</c>'s microscope and <c>reverie atlas --cache</c> find them.</summary>
    public static MergeReport Run(BatchManifest m, ModelRegistry registry, bool toCache)
    {
        var open = Unfinished(m);
        if (open.Count > 0)
        {
            string counts = string.Join(", ", open.GroupBy(x => x.State).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"));
            throw new BadInputException($"{open.Count} of {m.Items.Count} items are not done ({counts}; first: {BadInputException.Shown(open[0].Item.Name)}): run their shards again (reverie batch status shows which) and merge then.");
        }
        string folder = Path.Combine(m.OutDir, m.Kind);
        string temp = Path.Combine(m.OutDir, $".{m.Kind}.merging-{Environment.ProcessId}");
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        Directory.CreateDirectory(temp);
        try
        {
            var (files, cached) = m.Kind switch
            {
                "microscope" => Microscope(m, temp, registry, toCache),
                "dream" => (Dream(m, temp), 0),
                "style-grid" => (StyleGrid(m, temp), 0),
                "video" => (Video(m, temp), 0),
                _ => throw new BadInputException($"The manifest's kind '{BadInputException.Shown(m.Kind)}' is not one this Reverie merges ({string.Join(", ", BatchPlans.Kinds)})."),
            };
            string old = Path.Combine(m.OutDir, $".{m.Kind}.old-{Environment.ProcessId}");
            if (Directory.Exists(folder)) Directory.Move(folder, old);
            Directory.Move(temp, folder);
            if (Directory.Exists(old))
            {
                KeepOthers(old, folder);
                Directory.Delete(old, true);
            }
            return new MergeReport(folder, Path.Combine(folder, "index.json"), files, cached);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, true);
        }
    }

    /// <summary>A layer's folder name: its table name with anything but letters, digits, '_', '-' and '.' as '_'.</summary>
    public static string FolderOf(string layer) =>
        new([.. layer.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-' or '.' ? ch : '_')]);

    static (int Files, int Cached) Microscope(BatchManifest m, string dir, ModelRegistry registry, bool toCache)
    {
        var v = m.Plan["visualize"].Deserialize<VisualizeOptions>(Recipe.JsonOptions) ?? new VisualizeOptions();
        string model = (string?)m.Plan["model"] ?? "googlenet";
        int seed = (int?)m.Plan["seed"] ?? 0;
        var precision = (string?)m.Plan["precision"] == "bf16" ? Precision.Bf16 : Precision.Fp32;
        string weights = (string?)m.Plan["weights"] ?? "";
        if (toCache && ChannelCache.WeightsId(registry, model) != weights)
            throw new BadInputException($"The model '{BadInputException.Shown(model)}' here is not the one the batch was planned with; merge without --to-cache, or on a machine with the same weights.");
        int files = 0, cached = 0;
        var layers = new JsonArray();
        foreach (var group in m.Items.GroupBy(i => (string)i.Meta["layer"]!))
        {
            string folder = FolderOf(group.Key);
            Directory.CreateDirectory(Path.Combine(dir, folder));
            string? cacheDir = toCache ? ChannelCache.Dir(registry, model, group.Key, v, precision) : null;
            var tiles = new List<Tensor>();
            var labels = new List<string>();
            var channels = new JsonArray();
            using var scope = NewDisposeScope();
            foreach (var item in group.OrderBy(i => (int)i.Meta["channel"]!))
            {
                int ch = (int)item.Meta["channel"]!;
                var (png, side, _, _) = BatchRunner.Files(m, item);
                string name = ch.ToString(CultureInfo.InvariantCulture) + ".png";
                File.Copy(png, Path.Combine(dir, folder, name));
                files++;
                var recipe = Recipe.FromJson(InputFile.ReadAllText(side, "recipe", Recipe.MaxJsonBytes, confined: false), side);
                var tile = ImageIO.Load(png);
                tiles.Add(tile);
                labels.Add(ch.ToString(CultureInfo.InvariantCulture));
                if (cacheDir is not null)
                {
                    string target = ChannelCache.File(cacheDir, ch, v, seed);
                    Directory.CreateDirectory(cacheDir);
                    AtomicFile.WriteAllBytes(target, InputFile.ReadAllBytes(png, "image", Recipe.MaxImageBytes, confined: false));
                    cached++;
                }
                channels.Add(new JsonObject
                {
                    ["channel"] = ch,
                    ["file"] = $"{folder}/{name}",
                    ["objective"] = (string?)recipe.Results?["objective"],
                    ["value"] = recipe.Results?["value"]?.DeepClone(),
                    ["sha256"] = Downloader.Sha256Of(png),
                    ["item"] = item.Id,
                });
            }
            int columns = (int)Math.Ceiling(Math.Sqrt(tiles.Count));
            ImageIO.Save(Grid.Make(tiles, columns, labels), Path.Combine(dir, folder, "sheet.png"));
            files++;
            layers.Add(new JsonObject { ["layer"] = group.Key, ["folder"] = folder, ["sheet"] = $"{folder}/sheet.png", ["channels"] = channels });
        }
        var index = new JsonObject
        {
            ["kind"] = "microscope",
            ["model"] = model,
            ["weights"] = weights,
            ["reverie"] = m.Reverie,
            ["visualize"] = m.Plan["visualize"]?.DeepClone(),
            ["seed"] = seed,
            ["precision"] = m.Plan["precision"]?.DeepClone(),
            ["layers"] = layers,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "index.json"), index.ToJsonString(Recipe.JsonOptions));
        return (files + 1, cached);
    }

    /// <summary>The cells in a labelled grid, as <c>reverie style grid</c> lays them out, each cell's losses in the index.</summary>
    static int StyleGrid(BatchManifest m, string dir)
    {
        using var scope = NewDisposeScope();
        var ordered = m.Items.OrderBy(i => (int)i.Meta["row"]!).ThenBy(i => (int)i.Meta["column"]!).ToList();
        var cells = new JsonArray();
        var images = new List<Tensor>();
        foreach (var item in ordered)
        {
            var (png, side, _, _) = BatchRunner.Files(m, item);
            images.Add(ImageIO.Load(png));
            var recipe = Recipe.FromJson(InputFile.ReadAllText(side, "recipe", Recipe.MaxJsonBytes, confined: false), side);
            cells.Add(new JsonObject { ["row"] = item.Meta["row"]?.DeepClone(), ["column"] = item.Meta["column"]?.DeepClone(), ["label"] = item.Meta["label"]?.DeepClone(), ["results"] = recipe.Results?.DeepClone(), ["item"] = item.Id });
        }
        int columns = (int?)m.Plan["columns"] ?? (int)Math.Ceiling(Math.Sqrt(images.Count));
        ImageIO.Save(Grid.Make(images, columns, [.. ordered.Select(i => (string)i.Meta["label"]!)]), Path.Combine(dir, "grid.png"));
        var index = new JsonObject { ["kind"] = "style-grid", ["reverie"] = m.Reverie, ["model"] = m.Plan["model"]?.DeepClone(), ["rows"] = m.Plan["rows"]?.DeepClone(), ["ratios"] = m.Plan["ratios"]?.DeepClone(), ["cells"] = cells };
        AtomicFile.WriteAllText(Path.Combine(dir, "index.json"), index.ToJsonString(Recipe.JsonOptions));
        return 2;
    }

    /// <summary>
    /// The finished frames tied together along the optical flow and written as <c>video.mp4</c> with the
    /// input's frame rate and audio (<see cref="CoherentVideo"/>, the loop the commands use), and an
    /// index with the flow's time.
    /// </summary>
    static int Video(BatchManifest m, string dir)
    {
        string input = (string?)m.Plan["video"] ?? throw new BadInputException("The manifest's plan names no video.");
        if (!File.Exists(input)) throw new BadInputException($"The video '{BadInputException.Shown(input)}' the batch was planned from does not exist here; merge where it is.");
        if (Downloader.Sha256Of(input) != (string?)m.Plan["sha256"]) throw new BadInputException($"The video '{BadInputException.Shown(input)}' has changed since the batch was planned (SHA-256 differs).");
        var video = m.Plan["flow"].Deserialize<VideoOptions>(Recipe.JsonOptions) ?? new VideoOptions();
        video.Validate();
        int? maxSize = (int?)m.Plan["maxSize"];
        var frames = m.Items.ToDictionary(i => (int)i.Meta["frame"]!, i => BatchRunner.Files(m, i).Png);
        var info = Ffmpeg.Probe(input);
        string output = Path.Combine(dir, "video.mp4");
        var context = new JobContext { Output = output, Recipe = m.Items[0].Recipe };
        var run = CoherentVideo.Run(input, info, video, maxSize, context, (t, _, link) =>
        {
            if (!frames.TryGetValue(t, out var png)) throw new BadInputException($"The video now has more frames than the {frames.Count} planned; plan it again.");
            using var own = ImageIO.Load(png);
            return CoherentVideo.Join(own, link);
        });
        if (run.Frames != frames.Count) throw new BadInputException($"The video now has {run.Frames} frames, not the {frames.Count} planned; plan it again.");
        var index = new JsonObject
        {
            ["kind"] = "video", ["reverie"] = m.Reverie, ["job"] = m.Plan["job"]?.DeepClone(), ["model"] = m.Plan["model"]?.DeepClone(),
            ["video"] = input, ["file"] = "video.mp4", ["sha256"] = Downloader.Sha256Of(output),
            ["frames"] = run.Frames, ["width"] = run.Width, ["height"] = run.Height, ["flow"] = m.Plan["flow"]?.DeepClone(), ["flowSeconds"] = run.FlowSeconds,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "index.json"), index.ToJsonString(Recipe.JsonOptions));
        return 2;
    }

    /// <summary>
    /// An item's file name stem from its meta data, which the item's id does not cover: a plain name
    /// (no folder, no '..', no control character), or a refusal.
    /// </summary>
    static string PlainName(string? stem, BatchItem item)
    {
        if (stem is { Length: > 0 and <= OutputFiles.MaxNameBytes / 2 } && stem == Path.GetFileName(stem) && stem is not ("." or "..")
            && !stem.Any(c => char.IsControl(c) || c is '/' or '\\'))
            return stem;
        throw new BadInputException($"The item '{BadInputException.Shown(item.Name)}' names its output '{BadInputException.Shown(stem)}', which is not a plain file name; the manifest was changed by hand. Plan it again.");
    }

    static int Dream(BatchManifest m, string dir)
    {
        const int Thumb = 192;
        var tiles = new List<Tensor>();
        var entries = new JsonArray();
        using var scope = NewDisposeScope();
        foreach (var item in m.Items)
        {
            var (png, _, _, _) = BatchRunner.Files(m, item);
            string name = PlainName((string?)item.Meta["stem"], item) + ".png";
            File.Copy(png, Path.Combine(dir, name));
            var image = ImageIO.Load(png, maxSide: 4 * Thumb);
            long h = image.shape[2], w = image.shape[3], side = Math.Min(h, w);
            tiles.Add(ImageIO.Resize(image.narrow(2, (h - side) / 2, side).narrow(3, (w - side) / 2, side), Thumb, Thumb));
            entries.Add(new JsonObject { ["photo"] = item.Meta["photo"]?.DeepClone(), ["file"] = name, ["sha256"] = Downloader.Sha256Of(png), ["item"] = item.Id });
        }
        ImageIO.Save(Grid.Make(tiles, (int)Math.Ceiling(Math.Sqrt(tiles.Count))), Path.Combine(dir, "sheet.png"));
        var index = new JsonObject { ["kind"] = "dream", ["reverie"] = m.Reverie, ["model"] = m.Plan["model"]?.DeepClone(), ["dreams"] = entries };
        AtomicFile.WriteAllText(Path.Combine(dir, "index.json"), index.ToJsonString(Recipe.JsonOptions));
        return m.Items.Count + 2;
    }
}
