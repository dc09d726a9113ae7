using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Batch;
using Reverie.Cli.Commands.Visualize;
using Reverie.Dreaming;
using Reverie.Recipes;
using Reverie.Style;
using Reverie.Visualization;

namespace Reverie.Cli.Commands.Batch;

/// <summary>
/// <c>reverie batch plan|run|status|merge|slurm|k8s</c>: work too big for one machine, split into
/// independent items, run as shards by a cluster's own scheduler (Slurm job arrays, Kubernetes
/// Indexed Jobs) over a shared folder, and merged into one product.
/// </summary>
internal static class BatchCommand
{
    public static Command Create()
    {
        var cmd = new Command("batch", "Split big work (a whole-network microscope, a folder of photos) into shards for Slurm or Kubernetes, run them, and merge the result.");
        cmd.Subcommands.Add(Plan());
        cmd.Subcommands.Add(Run());
        cmd.Subcommands.Add(Status());
        cmd.Subcommands.Add(Merge());
        cmd.Subcommands.Add(Slurm());
        cmd.Subcommands.Add(Kubernetes());
        return cmd;
    }

    static Argument<string> ManifestArgument() => new("manifest") { Description = "The batch manifest (from reverie batch plan)." };
    static Option<string> OutDir() => new("--out") { Description = "The output folder (on a cluster: a shared folder every node mounts at the same place).", Required = true };
    static Option<int> ThreadsPerItem() => new("--threads-per-item") { Description = "CPU threads each item runs with, on every machine (results do not depend on where an item ran).", DefaultValueFactory = _ => 1 };

    static Command Plan()
    {
        var plan = new Command("plan", "List a batch's independent items, each with its full recipe, in a manifest.");
        plan.Subcommands.Add(PlanMicroscope());
        plan.Subcommands.Add(PlanDream());
        plan.Subcommands.Add(PlanStyleGrid());
        plan.Subcommands.Add(PlanVideo());
        return plan;
    }

    /// <summary>Saves a planned manifest under the output policy: a file that is not a batch manifest is replaced only with --force.</summary>
    static int SavePlan(CliRun.Invocation inv, BatchManifest m, string path)
    {
        if (File.Exists(path) && !inv.Forced && !BatchManifest.IsManifest(path))
            throw new BadInputException($"'{BadInputException.Shown(path)}' exists and is not a batch manifest; name another file or give --force.");
        OutputFiles.Check(path, [], force: true, sidecar: false); // empty, too long, a folder, a missing folder
        m.Save(path);
        inv.Out.WriteLine($"{path}: {m.Items.Count} {m.Kind} items into {m.OutDir}");
        inv.Out.WriteLine($"next: reverie batch run {ClusterFiles.Sh(path)} --shard 0/1   (or batch slurm / batch k8s)");
        return ReverieCli.Ok;
    }

    static Command PlanMicroscope()
    {
        var settings = new VisualizeCommand.Settings(new VisualizeOptions { Size = 128, Steps = 128 });
        var layers = new Option<string>("--layers") { Description = "Layers, comma-separated (names or aliases from reverie models layers).", Required = true };
        var channels = new Option<string>("--channels") { Description = "Channels of each layer: A..B, A-B or a list; ranges stop at each layer's last channel (default: all).", DefaultValueFactory = _ => "0..999999" };
        var output = CommonOptions.Output("The manifest to write (JSON).");
        var outDir = OutDir();
        var threads = ThreadsPerItem();
        var cmd = new Command("microscope", "One feature visualization per channel of each layer (the studio's microscope; size and steps default to its 128).") { layers, channels, outDir, output, threads, CommonOptions.Force };
        settings.AddTo(cmd);
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            var template = settings.Common.Apply(p, new VisualizeJobOptions { Objective = "", Visualize = settings.Read(p, 1) });
            var list = p.GetValue(layers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            string path = p.GetValue(output)!;
            var m = await BatchPlans.MicroscopeAsync(template, list, p.GetValue(channels)!, path, p.GetValue(outDir)!, p.GetValue(threads), inv.Registry, inv.Cancel);
            return SavePlan(inv, m, path);
        });
        return cmd;
    }

    static Command PlanDream()
    {
        var photos = new Option<string>("--photos") { Description = "A folder of photos (.png, .jpg, .webp) to dream, one item each.", Required = true };
        var recipe = new Option<string?>("--recipe") { Description = "A dream's output (or its recipe JSON) whose settings every photo gets (default: the dream command's defaults)." };
        var maxSize = new Option<int?>("--max-size") { Description = "Shrink each photo first so that its longer side is at most this many pixels." };
        var model = new Option<string?>("--model", "-m") { Description = "Model (default: the recipe's, else the dream command's)." };
        var output = CommonOptions.Output("The manifest to write (JSON).");
        var outDir = OutDir();
        var threads = ThreadsPerItem();
        var cmd = new Command("dream", "Dream every photo of a folder with the same settings.") { photos, recipe, maxSize, model, outDir, output, threads, CommonOptions.Force };
        cmd.SetAction(inv =>
        {
            var p = inv.Parse;
            DreamJobOptions template = new() { Input = "" };
            if (p.GetValue(recipe) is { } r)
            {
                var rec = Recipe.Load(r);
                var (job, options) = JobCatalog.FromRecipe(rec, r);
                template = options as DreamJobOptions ?? throw new BadInputException($"--recipe '{BadInputException.Shown(r)}' holds a {job.Kind} recipe, not a dream's.");
            }
            if (p.GetValue(model) is { } mdl) template = template with { Model = CommonOptions.ModelName(mdl) };
            if (p.GetValue(maxSize) is { } ms) template = template with { MaxSize = ms };
            string path = p.GetValue(output)!;
            return SavePlan(inv, BatchPlans.Dream(template, p.GetValue(photos)!, path, p.GetValue(outDir)!, p.GetValue(threads)), path);
        });
        return cmd;
    }

    static Command PlanStyleGrid()
    {
        var inputs = new Style.StyleCommand.GridInputs();
        var output = CommonOptions.Output("The manifest to write (JSON).");
        var outDir = OutDir();
        var threads = ThreadsPerItem();
        var cmd = new Command("style-grid", "The cells of reverie style grid (content layers by content/style ratios), one item each; the same options.") { outDir, output, threads, CommonOptions.Force };
        inputs.AddTo(cmd);
        cmd.SetAction(inv =>
        {
            var p = inv.Parse;
            string path = p.GetValue(output)!;
            return SavePlan(inv, BatchPlans.StyleGrid(inputs.Read(p), path, p.GetValue(outDir)!, p.GetValue(threads)), path);
        });
        return cmd;
    }

    static Command PlanVideo()
    {
        var input = new Argument<string>("video") { Description = "The video (.mp4, .mov, .mkv, .webm ...)." };
        var net = new Option<string?>("--net") { Description = "Stylize the frames with this style network (ONNX)." };
        var tile = new Option<int>("--tile") { Description = "With --net: frames larger than this are done tile by tile; 0 never.", DefaultValueFactory = _ => 1024 };
        var recipe = new Option<string?>("--recipe") { Description = "Dream the frames with the settings of this dream's output (or its recipe JSON), or stylize them with a stylize recipe's." };
        var maxSize = new Option<int?>("--max-size") { Description = "Shrink the frames first so that their longer side is at most this many pixels." };
        var video = new CommonOptions.VideoFlags();
        var output = CommonOptions.Output("The manifest to write (JSON).");
        var outDir = OutDir();
        var threads = ThreadsPerItem();
        var cmd = new Command("video", "Stylize or dream a video frame-parallel: one item per frame; the merge ties the frames together along the optical flow into OUT/video/video.mp4.")
            { input, net, tile, recipe, maxSize, video.Flow, video.Blend, outDir, output, threads, CommonOptions.Force };
        cmd.SetAction(inv =>
        {
            var p = inv.Parse;
            string path = CommonOptions.InputFile(p.GetValue(input)!, "video");
            JobOptions template;
            if ((p.GetValue(net) is null) == (p.GetValue(recipe) is null))
                throw new BadInputException("Give --net (stylize) or --recipe (a dream's or a stylize's settings), one of them.");
            if (p.GetValue(net) is { } styleNet)
                template = new StylizeJobOptions { Model = Path.GetFullPath(styleNet), Image = path, Tile = p.GetValue(tile) };
            else
            {
                string r = p.GetValue(recipe)!;
                var (job, options) = JobCatalog.FromRecipe(Recipe.Load(r), r);
                template = options switch
                {
                    DreamJobOptions or StylizeJobOptions => options,
                    _ => throw new BadInputException($"--recipe '{BadInputException.Shown(r)}' holds a {job.Kind} recipe, not a dream's or a stylize's."),
                };
            }
            string manifest = p.GetValue(output)!;
            return SavePlan(inv, BatchPlans.Video(template, path, video.Parse(p), p.GetValue(maxSize), manifest, p.GetValue(outDir)!, p.GetValue(threads), inv.Cancel), manifest);
        });
        return cmd;
    }

    static Command Run()
    {
        var manifest = ManifestArgument();
        var shard = new Option<string?>("--shard") { Description = "Shard I/N (e.g. 0/4); without it, I comes from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX." };
        var count = new Option<int?>("--shard-count") { Description = "N, with the index from the scheduler's environment (fixed, so that a resubmitted index keeps its items)." };
        var cmd = new Command("run", "Make the items of one shard that are not done yet (safe to repeat, or to run twice at once).") { manifest, shard, count };
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            var m = BatchManifest.Load(p.GetValue(manifest)!);
            var (index, n) = BatchRunner.ResolveShard(p.GetValue(shard), p.GetValue(count), m.Items.Count, Environment.GetEnvironmentVariable);
            var report = await CliRun.WithProgress(inv.Err, events => new BatchRunner(m, inv.Registry, events, inv.Cancel).RunAsync(index, n));
            inv.Out.WriteLine($"shard {index}/{n}: {report.Items} items: {report.Made} made, {report.Skipped} already done, {report.Busy} being made elsewhere, {report.Failed} failed ({report.Seconds:F1} s, {report.ItemSeconds:F1} s in items)");
            if (report.Interrupted) return CliRun.Interrupted;
            if (report.Failed > 0)
            {
                inv.Err.WriteLine($"error: {report.Failed} items failed; reverie batch status {ClusterFiles.Sh(m.File)} says why.");
                return 1;
            }
            return ReverieCli.Ok;
        });
        return cmd;
    }

    static Command Status()
    {
        var manifest = ManifestArgument();
        var json = new Option<bool>("--json") { Description = "Print the counts and the unfinished items as JSON." };
        var follow = new Option<bool>("--follow") { Description = "Show a progress bar until every item is done or failed (Ctrl+C stops watching)." };
        var cmd = new Command("status", "Done, missing, failed and corrupt items of a batch; exit 0 when every item is done, 1 otherwise.") { manifest, json, follow };
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            var m = BatchManifest.Load(p.GetValue(manifest)!);
            if (p.GetValue(follow))
            {
                await CliRun.WithProgress(inv.Err, async events =>
                {
                    while (!inv.Cancel.IsCancellationRequested)
                    {
                        var states = m.Items.Select(i => BatchRunner.StateOf(m, i)).ToList();
                        int done = states.Count(s => s == ItemState.Done), failed = states.Count(s => s is ItemState.Failed or ItemState.Corrupt);
                        events.Report(new JobEvent { Stage = $"{done} done, {failed} failed, {states.Count - done - failed} to do", Step = done, Total = states.Count });
                        if (done + failed == states.Count) break;
                        try { await Task.Delay(1000, inv.Cancel); } catch (OperationCanceledException) { break; }
                    }
                    return 0;
                });
            }
            var all = m.Items.Select(i => (Item: i, State: BatchRunner.StateOf(m, i))).ToList();
            var open = all.Where(x => x.State != ItemState.Done).ToList();
            string Reason(BatchItem i) => BatchRunner.Files(m, i).Failed is var f && File.Exists(f) ? File.ReadAllText(f).Trim() : "";
            if (p.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["manifest"] = m.File, ["kind"] = m.Kind, ["items"] = all.Count,
                    ["done"] = all.Count(x => x.State == ItemState.Done), ["missing"] = all.Count(x => x.State == ItemState.Missing),
                    ["failed"] = all.Count(x => x.State == ItemState.Failed), ["corrupt"] = all.Count(x => x.State == ItemState.Corrupt),
                    ["unfinished"] = new JsonArray([.. open.Select(x => (JsonNode?)new JsonObject { ["name"] = x.Item.Name, ["id"] = x.Item.Id, ["state"] = x.State.ToString().ToLowerInvariant(), ["reason"] = Reason(x.Item) })]),
                };
                inv.Out.WriteLine(o.ToJsonString(Recipe.JsonOptions));
            }
            else
            {
                var t = new Table().AddColumn("state").AddColumn(new TableColumn("items").RightAligned());
                foreach (var s in Enum.GetValues<ItemState>()) t.AddRow(s.ToString().ToLowerInvariant(), all.Count(x => x.State == s).ToString(System.Globalization.CultureInfo.InvariantCulture));
                inv.Results.Write(t);
                foreach (var (item, state) in open.Where(x => x.State != ItemState.Missing).Take(20))
                    inv.Out.WriteLine($"{state.ToString().ToLowerInvariant()}: {item.Name} ({item.Id}) {Reason(item)}");
                inv.Out.WriteLine(open.Count == 0 ? $"all {all.Count} items done: reverie batch merge {ClusterFiles.Sh(m.File)}" : $"{open.Count} of {all.Count} items not done");
            }
            return open.Count == 0 ? ReverieCli.Ok : 1;
        });
        return cmd;
    }

    static Command Merge()
    {
        var manifest = ManifestArgument();
        var toCache = new Option<bool>("--to-cache") { Description = "Also put a microscope's tiles into the channel cache, where reverie studio's microscope and reverie atlas --cache find them." };
        var cmd = new Command("merge", "Build the batch's product from its items (refused while any item is not done).") { manifest, toCache };
        cmd.SetAction(inv =>
        {
            var m = BatchManifest.Load(inv.Parse.GetValue(manifest)!);
            var r = BatchMerge.Run(m, inv.Registry, inv.Parse.GetValue(toCache));
            inv.Out.WriteLine($"{r.Folder}: {r.Files} files, index {r.Index}{(r.Cached > 0 ? $"; {r.Cached} tiles put into the channel cache" : "")}");
            return ReverieCli.Ok;
        });
        return cmd;
    }

    static Command Slurm()
    {
        var manifest = ManifestArgument();
        var tasks = new Option<int>("--tasks") { Description = "Array tasks (shards).", Required = true };
        var partition = new Option<string?>("--partition") { Description = "The Slurm partition." };
        var time = new Option<string?>("--time") { Description = "Each task's time limit (Slurm's forms: MM, HH:MM:SS, D-HH:MM)." };
        var mem = new Option<int?>("--mem") { Description = "Each task's memory, in MB." };
        var submit = new Option<bool>("--submit") { Description = "Submit it with sbatch and print the job id." };
        var output = CommonOptions.Output("The sbatch script to write (default: MANIFEST with .sbatch).", required: false);
        var cmd = new Command("slurm", "Write a Slurm job-array script that runs the shards (and submit it with --submit).") { manifest, tasks, partition, time, mem, submit, output, CommonOptions.Force };
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            var m = BatchManifest.Load(p.GetValue(manifest)!);
            string script = ClusterFiles.Slurm(m, p.GetValue(tasks), ClusterFiles.Self(), p.GetValue(partition), p.GetValue(time), p.GetValue(mem));
            string path = p.GetValue(output) ?? Path.ChangeExtension(m.File, ".sbatch");
            WriteScript(inv, path, script, "#!/bin/bash\n# Reverie batch");
            Directory.CreateDirectory(Path.Combine(m.OutDir, "logs"));
            inv.Out.WriteLine($"{path}: {p.GetValue(tasks)} array tasks");
            if (!p.GetValue(submit)) return ReverieCli.Ok;
            var (code, stdout, stderr) = await RunTool("sbatch", ["--parsable", path], inv.Cancel);
            if (code != 0) throw new ReverieException($"sbatch refused the script: {BadInputException.Shown(stderr.Trim(), 200)}");
            inv.Out.WriteLine($"submitted: job {stdout.Trim()}");
            return ReverieCli.Ok;
        });
        return cmd;
    }

    static Command Kubernetes()
    {
        var manifest = ManifestArgument();
        var completions = new Option<int>("--completions") { Description = "Indexes (shards).", Required = true };
        var parallelism = new Option<int?>("--parallelism") { Description = "Indexes running at once (default: all)." };
        var image = new Option<string>("--image") { Description = "The container image with reverie on its PATH (see the Dockerfile).", Required = true };
        var volume = new Option<string>("--volume") { Description = "The PersistentVolumeClaim that holds the manifest's folder.", Required = true };
        var mount = new Option<string?>("--mount-path") { Description = "Where the pods mount it (default: the folder's path here, so the command is the same)." };
        var retries = new Option<int>("--retries") { Description = "Retries per index (backoffLimitPerIndex).", DefaultValueFactory = _ => 3 };
        var output = CommonOptions.Output("The Job manifest to write (default: MANIFEST with .k8s.yaml).", required: false);
        var cmd = new Command("k8s", "Write a Kubernetes Indexed Job that runs the shards.") { manifest, completions, parallelism, image, volume, mount, retries, output, CommonOptions.Force };
        cmd.SetAction(inv =>
        {
            var p = inv.Parse;
            var m = BatchManifest.Load(p.GetValue(manifest)!);
            int n = p.GetValue(completions);
            string yaml = ClusterFiles.Kubernetes(m, n, p.GetValue(parallelism) ?? n, p.GetValue(image)!, p.GetValue(volume)!, p.GetValue(mount), p.GetValue(retries), "reverie");
            string path = p.GetValue(output) ?? Path.ChangeExtension(m.File, ".k8s.yaml");
            WriteScript(inv, path, yaml, "# Reverie batch");
            inv.Out.WriteLine($"{path}: an Indexed Job of {n} shards (kubectl apply -f {ClusterFiles.Sh(path)})");
            return ReverieCli.Ok;
        });
        return cmd;
    }

    /// <summary>Writes a generated file atomically; an existing file Reverie did not generate is replaced only with --force.</summary>
    static void WriteScript(CliRun.Invocation inv, string path, string text, string ours)
    {
        OutputFiles.Check(path, [], force: true, sidecar: false);
        if (File.Exists(path) && !inv.Forced)
        {
            using var reader = new StreamReader(InputFile.OpenRead(path, "file", 1L << 30));
            var head = new char[ours.Length];
            int read = reader.ReadBlock(head, 0, head.Length);
            if (new string(head, 0, read) != ours) throw new BadInputException($"'{BadInputException.Shown(path)}' exists and was not written by reverie batch; name another file or give --force.");
        }
        AtomicFile.WriteAllText(path, text);
    }

    static async Task<(int Code, string Out, string Err)> RunTool(string tool, string[] args, CancellationToken cancel)
    {
        var start = new System.Diagnostics.ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        System.Diagnostics.Process process;
        try { process = System.Diagnostics.Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception) { throw new BadInputException($"{tool} is not installed here (it comes with Slurm's client tools); submit the script on a login node of the cluster."); }
        using (process)
        {
            var o = process.StandardOutput.ReadToEndAsync(cancel);
            var e = process.StandardError.ReadToEndAsync(cancel);
            await process.WaitForExitAsync(cancel);
            return (process.ExitCode, await o, await e);
        }
    }
}
