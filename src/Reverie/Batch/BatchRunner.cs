using System.Globalization;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models.Registry;

namespace Reverie.Batch;

/// <summary>What a shard did.</summary>
/// <param name="Items">Items in the shard.</param>
/// <param name="Made">Items this run made.</param>
/// <param name="Skipped">Items already done and verified (by an earlier or another run).</param>
/// <param name="Busy">Items another process was making at the time (left to it).</param>
/// <param name="Failed">Items whose job failed (each has an <c>ID.failed</c> file with the reason).</param>
/// <param name="Interrupted">Whether cancellation stopped the shard (the item in progress left nothing finished-looking).</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="ItemSeconds">Time spent inside the items' jobs (the rest is the shard's own start and checks).</param>
internal sealed record ShardReport(int Items, int Made, int Skipped, int Busy, int Failed, bool Interrupted, double Seconds, double ItemSeconds);

/// <summary>The state of one item's files.</summary>
internal enum ItemState { Missing, Done, Failed, Corrupt }

/// <summary>
/// Runs a shard of a batch. Idempotent and safe to run twice at once: an item whose output exists
/// and matches its <c>.done</c> hashes is skipped; an item is made under an exclusive lock on
/// <c>ID.lock</c> (released by the kernel when the process dies), and the done-check is repeated
/// once the lock is held, so concurrent shards make each item once. Outputs are written to a
/// temporary name and renamed (by the job), and the <c>.done</c> file is written last, so an item
/// cut short leaves nothing that looks finished.
/// </summary>
internal sealed class BatchRunner(BatchManifest manifest, ModelRegistry registry, IProgress<JobEvent>? events, CancellationToken cancel)
{
    /// <summary>Shard I of N from <c>--shard I/N</c>, or from the scheduler's environment: Slurm's <c>SLURM_ARRAY_TASK_ID</c> (with <c>SLURM_ARRAY_TASK_COUNT</c>) or Kubernetes' <c>JOB_COMPLETION_INDEX</c>; <paramref name="count"/> (<c>--shard-count</c>) fixes N, so that a resubmitted single index keeps its shard.</summary>
    public static (int Index, int Count) ResolveShard(string? shard, int? count, int items, Func<string, string?> env)
    {
        int index, n;
        if (shard is not null)
        {
            var parts = shard.Split('/');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out index) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out n))
                throw new BadInputException($"--shard takes I/N, e.g. 0/4; got '{BadInputException.Shown(shard)}'.");
        }
        else
        {
            string? id = env("SLURM_ARRAY_TASK_ID") is { Length: > 0 } s ? s : env("JOB_COMPLETION_INDEX");
            if (id is null || id.Length == 0)
                throw new BadInputException("batch run needs --shard I/N, or SLURM_ARRAY_TASK_ID (a Slurm array task) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) in the environment.");
            if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out index))
                throw new BadInputException($"The shard index from the environment must be a whole number; got '{BadInputException.Shown(id)}'.");
            string? total = count is null ? env("SLURM_ARRAY_TASK_COUNT") : null;
            if (count is null && (total is null || !int.TryParse(total, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                throw new BadInputException("batch run needs --shard-count N with a shard index from the environment (Kubernetes does not say how many shards there are).");
            n = count ?? int.Parse(total!, CultureInfo.InvariantCulture);
        }
        if (n < 1 || n > BatchManifest.MaxItems) throw new BadInputException($"The number of shards must be from 1 to {BatchManifest.MaxItems}; got {n}.");
        if (index >= n) throw new BadInputException($"Shard {index} is out of range: shards of {n} are numbered 0 to {n - 1}.");
        if (n > items) throw new BadInputException($"{n} shards for {items} items would leave shards with nothing to do; use at most {items}.");
        return (index, n);
    }

    /// <summary>The state of an item's files.</summary>
    public static ItemState StateOf(BatchManifest m, BatchItem item)
    {
        var (png, side, done, failed) = Files(m, item);
        if (File.Exists(done))
            return Verified(png, side, done) ? ItemState.Done : ItemState.Corrupt;
        return File.Exists(failed) ? ItemState.Failed : ItemState.Missing;
    }

    /// <summary>An item's files: its image, its recipe, its hashes (written last) and its failure note.</summary>
    public static (string Png, string Recipe, string Done, string Failed) Files(BatchManifest m, BatchItem item)
    {
        string png = Path.Combine(m.ItemsDir, item.Id + ".png");
        return (png, OutputFiles.SidecarOf(png), png[..^4] + ".done", png[..^4] + ".failed");
    }

    static bool Verified(string png, string side, string done)
    {
        try
        {
            var lines = File.ReadAllLines(done);
            return lines.Length >= 2 && File.Exists(png) && File.Exists(side)
                && lines[0] == "png " + Downloader.Sha256Of(png) && lines[1] == "recipe " + Downloader.Sha256Of(side);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Runs the items of shard <paramref name="index"/> of <paramref name="count"/>.</summary>
    public async Task<ShardReport> RunAsync(int index, int count)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TorchSharp.torch.set_num_threads(manifest.Threads);
        Directory.CreateDirectory(manifest.ItemsDir);
        var mine = manifest.Shard(index, count).ToList();
        int made = 0, skipped = 0, busy = 0, failed = 0, k = 0;
        double inItems = 0;
        var checkedInputs = new Dictionary<string, string?>();
        const long PerItem = 1000;
        foreach (var item in mine)
        {
            if (cancel.IsCancellationRequested) break;
            var (png, side, done, failedFile) = Files(manifest, item);
            // An item that is not made here says why, with the shard's progress after it (not "item 1/4 … 0%").
            void Passed(string why)
            {
                k++;
                events?.Report(new JobEvent { Stage = $"item {k}/{mine.Count}: {item.Name}: {why}", Step = k * PerItem, Total = mine.Count * PerItem });
            }
            if (Verified(png, side, done)) { skipped++; Passed("already done"); continue; }
            using var held = TryLock(png[..^4] + ".lock");
            if (held is null) { busy++; Passed("being made by another shard"); continue; }
            if (Verified(png, side, done)) { skipped++; Passed("already done"); continue; } // another shard finished it while we looked
            events?.Report(new JobEvent { Stage = $"item {k + 1}/{mine.Count}: {item.Name}", Step = k * PerItem, Total = mine.Count * PerItem });
            // A .done that does not verify (a corrupted output) is removed first: the item is made again.
            File.Delete(done);
            var itemClock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                CheckInputs(item, checkedInputs);
                var (job, options) = JobCatalog.FromRecipe(item.Recipe, $"item {item.Name}");
                int at = k;
                var inner = new SyncProgress<JobEvent>(e => events?.Report(e.Kind == JobEventKind.Progress
                    ? e with { Stage = $"item {at + 1}/{mine.Count}: {item.Name}: {e.Stage}", Step = at * PerItem + (long)(e.Fraction * PerItem), Total = mine.Count * PerItem, Preview = null }
                    : e));
                var context = new JobContext { Output = png, Recipe = item.Recipe, Cancel = cancel, Events = inner, Registry = registry, Force = true };
                var result = await job.RunAsync(options, context);
                if (result.Interrupted)
                {
                    // A part-made item is not kept: its files could be taken for the finished item's.
                    File.Delete(png); File.Delete(side);
                    break;
                }
                AtomicFile.WriteAllText(done, $"png {Downloader.Sha256Of(png)}\nrecipe {Downloader.Sha256Of(side)}\n");
                File.Delete(failedFile);
                made++;
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                File.Delete(png); File.Delete(side);
                break;
            }
            catch (ReverieException e)
            {
                AtomicFile.WriteAllText(failedFile, e.Message + "\n");
                events?.Report(new JobEvent { Kind = JobEventKind.Note, Message = $"item {item.Name} failed: {e.Message}" });
                failed++;
            }
            finally { inItems += itemClock.Elapsed.TotalSeconds; }
            k++;
        }
        events?.Report(new JobEvent { Stage = "shard done", Step = mine.Count * PerItem, Total = mine.Count * PerItem });
        return new ShardReport(mine.Count, made, skipped, busy, failed, cancel.IsCancellationRequested, clock.Elapsed.TotalSeconds, inItems);
    }

    /// <summary>The recipe's input files exist here and are the ones planned (same hash), checked once per file.</summary>
    static void CheckInputs(BatchItem item, Dictionary<string, string?> seen)
    {
        foreach (var (path, sha) in item.Recipe.Inputs)
        {
            if (!seen.TryGetValue(path, out var actual))
                seen[path] = actual = File.Exists(path) ? Downloader.Sha256Of(path) : null;
            if (actual is null) throw new BadInputException($"The input '{BadInputException.Shown(path)}' does not exist on this machine; on a cluster it must be on the shared folder.");
            if (actual != sha) throw new BadInputException($"The input '{BadInputException.Shown(path)}' differs from the one planned (SHA-256 differs).");
        }
    }

    /// <summary>An exclusive lock on <paramref name="path"/> (flock through .NET's FileShare.None), or null when another process holds it.</summary>
    static FileStream? TryLock(string path)
    {
        try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException) { return null; }
    }
}
