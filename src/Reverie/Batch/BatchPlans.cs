using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Dreaming;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models.Registry;
using Reverie.Recipes;
using Reverie.Style;
using Reverie.Video;
using Reverie.Visualization;

namespace Reverie.Batch;

/// <summary>The kinds of batch Reverie plans, each a list of independent jobs; a new kind is a method here and a product in <see cref="BatchMerge"/>.</summary>
internal static class BatchPlans
{
    /// <summary>The kinds.</summary>
    public static readonly string[] Kinds = ["microscope", "dream", "style-grid", "video"];

    /// <summary>
    /// A microscope: one <c>visualize</c> job per channel of each layer (objective <c>LAYER:CHANNEL</c>,
    /// the channel's mean), all with the same settings and seed, so that the tiles match the channel
    /// cache the studio's microscope reads.
    /// </summary>
    public static async Task<BatchManifest> MicroscopeAsync(VisualizeJobOptions template, IReadOnlyList<string> layers, string channels, string manifest, string outDir, int threads, ModelRegistry registry, CancellationToken cancel)
    {
        if (layers.Count == 0) throw new BadInputException("--layers names no layer.");
        template.Validate();
        string model = template.Model ?? "googlenet";
        var created = Now();
        var items = new List<BatchItem>();
        var layerPlans = new JsonArray();
        using (var net = await new ModelOpener(registry, null, cancel).OpenAsync(model))
        {
            foreach (var layer in layers.Distinct())
            {
                string tensor = net.ResolveLayer(layer);
                var info = net.Layers.First(l => l.Name == tensor || l.Aliases.Contains(tensor));
                var list = new AtlasJobOptions { Layer = layer, Channels = channels }.ParseChannels(info.Channels);
                foreach (int ch in list)
                {
                    var options = template with { Objective = $"{info.Name}:{ch}" };
                    items.Add(Item(new VisualizeJob(), options, $"{info.Name}/{ch}", created, new JsonObject { ["layer"] = info.Name, ["channel"] = ch }));
                }
                layerPlans.Add(new JsonObject { ["layer"] = info.Name, ["given"] = layer, ["channels"] = info.Channels, ["selected"] = list.Count });
            }
        }
        var plan = new JsonObject
        {
            ["model"] = model,
            ["weights"] = ChannelCache.WeightsId(registry, model),
            ["layers"] = layerPlans,
            ["visualize"] = JsonSerializer.SerializeToNode(template.Visualize, Recipe.JsonOptions),
            ["seed"] = template.Seed,
            ["precision"] = template.Precision.ToString().ToLowerInvariant(),
        };
        return Manifest("microscope", items, plan, manifest, outDir, threads, created);
    }

    /// <summary>A folder of photos to dream, each with the same options (<paramref name="template"/>'s, its photo replaced).</summary>
    public static BatchManifest Dream(DreamJobOptions template, string photos, string manifest, string outDir, int threads)
    {
        if (!Directory.Exists(photos)) throw new BadInputException($"--photos '{BadInputException.Shown(photos)}' is not a folder.");
        var files = Directory.EnumerateFiles(photos).Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" or ".webp")
            .Select(Path.GetFullPath).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new BadInputException($"--photos '{BadInputException.Shown(photos)}' holds no .png, .jpg or .webp photo.");
        // A photo is a non-empty regular file: empty files, devices and pipes are named, not planned.
        if (files.FirstOrDefault(f => !Imaging.InputFile.IsRegularFile(f) || new FileInfo(f).Length == 0) is { } bad)
            throw new BadInputException($"--photos holds '{BadInputException.Shown(Path.GetFileName(bad))}', which is empty or not a regular file; remove it, or plan another folder.");
        var stems = files.GroupBy(Path.GetFileNameWithoutExtension).Where(g => g.Count() > 1).Select(g => g.Key).FirstOrDefault();
        if (stems is not null) throw new BadInputException($"--photos holds two photos named '{BadInputException.Shown(stems)}' (different extensions); their dreams would have the same name.");
        var created = Now();
        var items = files.Select(f =>
        {
            var options = template with { Input = f };
            options.Validate();
            return Item(new DreamJob(), options, Path.GetFileName(f), created, new JsonObject { ["photo"] = f, ["stem"] = Path.GetFileNameWithoutExtension(f) });
        }).ToList();
        var plan = new JsonObject { ["model"] = template.Model, ["photos"] = Path.GetFullPath(photos) };
        return Manifest("dream", items, plan, manifest, outDir, threads, created);
    }

    /// <summary>
    /// Gatys et al.'s grid as one <c>style</c> job per cell (content layer × content/style weight
    /// ratio, content weight = ratio × style weight): the cells <c>reverie style grid</c> makes one
    /// after another, each on a machine of its own.
    /// </summary>
    public static BatchManifest StyleGrid(StyleGridJobOptions grid, string manifest, string outDir, int threads)
    {
        grid.Validate();
        var created = Now();
        var items = new List<BatchItem>();
        for (int i = 0; i < grid.Rows.Count; i++)
            for (int j = 0; j < grid.Ratios.Count; j++)
            {
                var cell = new StyleJobOptions
                {
                    Model = grid.Model, Seed = grid.Seed, Precision = grid.Precision, Device = grid.Device,
                    Content = grid.Content, Styles = [new StyleImage(grid.StyleImage)],
                    Style = grid.Style with { ContentLayers = [grid.Rows[i]], ContentWeight = grid.Ratios[j] * grid.Style.StyleWeight },
                };
                cell.Validate();
                string label = $"{grid.Rows[i]} {grid.Ratios[j].ToString("G2", System.Globalization.CultureInfo.InvariantCulture)}";
                items.Add(Item(new StyleJob(), cell, label, created, new JsonObject { ["row"] = i, ["column"] = j, ["label"] = label }));
            }
        var plan = new JsonObject
        {
            ["model"] = grid.Model, ["columns"] = grid.Ratios.Count,
            ["rows"] = new JsonArray([.. grid.Rows.Select(r => (JsonNode?)r)]),
            ["ratios"] = new JsonArray([.. grid.Ratios.Select(r => (JsonNode?)r)]),
        };
        return Manifest("style-grid", items, plan, manifest, outDir, threads, created);
    }

    /// <summary>
    /// A video done frame-parallel: its frames are decoded once into <c>OUT/frames/</c> (at the size
    /// <paramref name="maxSize"/> gives), and each is one item, a <c>stylize</c> or <c>dream</c> job of
    /// <paramref name="template"/>'s settings. The merge then ties the finished frames together along
    /// the optical flow (<paramref name="video"/>'s flow and blend), which is cheap beside the frames,
    /// and writes the MP4 with the input's frame rate and audio: the same file the command makes on
    /// one machine. A dream that starts each frame from the previous dream
    /// (<see cref="VideoOptions.DreamFromPrevious"/>) cannot be split this way, nor can Gatys style,
    /// whose frames start from the previous result.
    /// </summary>
    public static BatchManifest Video(JobOptions template, string input, VideoOptions video, int? maxSize, string manifest, string outDir, int threads, CancellationToken cancel)
    {
        if (template is not (StylizeJobOptions or DreamJobOptions))
            throw new BadInputException("A video batch stylizes (a style network) or dreams (a dream recipe) its frames.");
        if (template is DreamJobOptions { Video.DreamFromPrevious: true } or DreamJobOptions { Zoom: > 0 })
            throw new BadInputException("A dream that starts each frame from the previous one (or a zoom) cannot be split into frames made apart.");
        video.Validate();
        // A recipe's own shrink holds unless --max-size says otherwise.
        maxSize ??= template switch { StylizeJobOptions { MaxSize: > 0 } st => st.MaxSize, DreamJobOptions d => d.MaxSize, _ => null };
        if (maxSize is <= 0) throw new BadInputException($"--max-size must be positive; got {maxSize}.");
        if (!File.Exists(input)) throw new BadInputException($"Video '{BadInputException.Shown(input)}' does not exist.");
        if (!Ffmpeg.Available) throw new BadInputException("Video input and output need ffmpeg, which is not installed (Debian: apt-get install ffmpeg).");
        input = Path.GetFullPath(input);
        var info = Ffmpeg.Probe(input);
        var (w, h) = CoherentVideo.FrameSize(info, maxSize);
        CheckPlace(manifest, outDir, threads);
        string frames = Path.Combine(Path.GetFullPath(outDir), "frames");
        Directory.CreateDirectory(frames);
        var created = Now();
        var items = new List<BatchItem>();
        int t = 0;
        foreach (var rgb in Ffmpeg.ReadFrames(input, w, h, cancel))
        {
            cancel.ThrowIfCancellationRequested();
            string png = Path.Combine(frames, $"{t:D6}.png");
            using (var frame = CoherentVideo.FromRgb(rgb, w, h))
            {
                var (rgba, _, _) = ImageIO.ToRgba(frame);
                var bytes = ImageIO.Encode(rgba, w, h, SkiaSharp.SKEncodedImageFormat.Png);
                // A plan made again leaves frames that are already right alone: their items keep their ids.
                if (!File.Exists(png) || !File.ReadAllBytes(png).AsSpan().SequenceEqual(bytes)) AtomicFile.WriteAllBytes(png, bytes);
            }
            JobOptions options = template switch
            {
                StylizeJobOptions st => st with { Image = png, MaxSize = 0, Video = new() },
                DreamJobOptions d => d with { Input = png, MaxSize = null, Video = new() },
                _ => throw new InvalidOperationException(),
            };
            options.Validate();
            IJob job = template is StylizeJobOptions ? new StylizeJob() : new DreamJob();
            items.Add(Item(job, options, $"frame {t + 1}", created, new JsonObject { ["frame"] = t }));
            t++;
        }
        if (items.Count == 0) throw new BadInputException($"'{BadInputException.Shown(input)}' has no frames ffmpeg can decode.");
        var plan = new JsonObject
        {
            ["video"] = input, ["sha256"] = Downloader.Sha256Of(input), ["job"] = template is StylizeJobOptions ? "stylize" : "dream",
            ["model"] = template.Model, ["width"] = w, ["height"] = h, ["maxSize"] = maxSize, ["frames"] = items.Count,
            ["frameRate"] = info.FrameRate, ["audio"] = info.HasAudio,
            ["flow"] = JsonSerializer.SerializeToNode(video, Recipe.JsonOptions),
        };
        return Manifest("video", items, plan, manifest, outDir, threads, created);
    }

    static DateTime Now() => DateTime.UnixEpoch.AddSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    static BatchItem Item(IJob job, JobOptions options, string name, DateTime created, JsonObject meta)
    {
        var recipe = JobCatalog.RecipeFor(job, options) with { Created = created };
        return new BatchItem { Id = BatchItem.IdOf(recipe), Name = name, Recipe = recipe, Meta = meta };
    }

    /// <summary>The checks of a plan's place and threads, before anything is written.</summary>
    static void CheckPlace(string manifest, string outDir, int threads)
    {
        if (threads is < 1 or > 64) throw new BadInputException($"--threads-per-item must be from 1 to 64; got {threads}.");
        if (string.IsNullOrWhiteSpace(outDir)) throw new BadInputException("--out is empty; name the output folder.");
        if (string.IsNullOrWhiteSpace(manifest)) throw new BadInputException("-o is empty; name the manifest file.");
        if (Directory.Exists(manifest)) throw new BadInputException($"-o '{BadInputException.Shown(manifest)}' is a folder; name the manifest file.");
        if (File.Exists(outDir)) throw new BadInputException($"--out '{BadInputException.Shown(outDir)}' is a file; name a folder.");
    }

    static BatchManifest Manifest(string kind, List<BatchItem> items, JsonObject plan, string manifest, string outDir, int threads, DateTime created)
    {
        CheckPlace(manifest, outDir, threads);
        var dupe = items.GroupBy(i => i.Id).FirstOrDefault(g => g.Count() > 1);
        if (dupe is not null) throw new BadInputException($"The plan holds the same work twice ({BadInputException.Shown(dupe.First().Name)}).");
        if (items.Count > BatchManifest.MaxItems) throw new BadInputException($"The plan has {items.Count} items; a manifest holds at most {BatchManifest.MaxItems}.");
        return new BatchManifest { Kind = kind, Out = BatchManifest.OutFor(manifest, outDir), Threads = threads, Created = created, Plan = plan, Items = items };
    }
}
