using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Reverie.Studio;

/// <summary>
/// Runs queued jobs, <see cref="StudioSettings.Concurrency"/> at a time, each in a process of its own
/// (<c>reverie replay RECIPE --events-dir DIR</c>), and relays their events to the pages that follow
/// them.
/// </summary>
/// <remarks>
/// A process per job, not a thread in the studio: a job that fails hard cannot take the studio down,
/// cancelling is the CLI's own SIGTERM (the job saves what it has), the memory of a job returns to the
/// system when it ends, and no web request's allocations run beside libtorch in one process (TorchSharp
/// frees its temporary Scalars in finalizers that another thread's garbage collection can run while
/// libtorch reads them; see Reverie's Scalars class). The job's standard input stays open while the
/// studio lives: when the studio dies, the job sees its end and stops, saving what it has.
/// </remarks>
public sealed class JobRunner : IDisposable
{
    readonly StudioSettings _settings;
    readonly JobStore _store;
    readonly CancellationTokenSource _stop = new();
    readonly SemaphoreSlim _wake = new(0);
    readonly ConcurrentDictionary<long, Live> _live = new();
    readonly List<Task> _workers = [];

    /// <summary>A running job: its process, its latest event, and the streams following it.</summary>
    sealed class Live
    {
        public Process? Process;
        public bool CancelRequested;
        public JsonObject? Last;
        public readonly List<Channel<string>> Followers = [];
        public readonly Lock Lock = new();
    }

    /// <summary>The runner of <paramref name="store"/>'s queue.</summary>
    public JobRunner(StudioSettings settings, JobStore store)
    {
        _settings = settings;
        _store = store;
    }

    /// <summary>The folder of a job's files.</summary>
    public string JobDir(long id) => Path.Combine(_settings.Data, "jobs", id.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Starts the workers.</summary>
    public void Start()
    {
        for (int i = 0; i < _settings.Concurrency; i++) _workers.Add(Task.Run(WorkLoop));
    }

    /// <summary>Tells the workers a job was queued.</summary>
    public void Wake() => _wake.Release();

    async Task WorkLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            var job = _store.Claim();
            if (job is null)
            {
                try { await _wake.WaitAsync(TimeSpan.FromSeconds(1), _stop.Token); } catch (OperationCanceledException) { return; }
                continue;
            }
            try { await RunAsync(job); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _store.Finish(job.Id, StudioJobState.Failed, null, $"The studio could not run the job: {e.Message.Split('\n')[0]}", []);
                Publish(job.Id, StateEvent(job.Id), end: true);
            }
        }
    }

    async Task RunAsync(StudioJob job)
    {
        string dir = JobDir(job.Id);
        Directory.CreateDirectory(dir);
        foreach (var old in Directory.EnumerateFiles(dir).Where(f => Path.GetFileName(f) != "preview.jpg")) File.Delete(old); // a resumed job starts clean
        string recipe = Path.Combine(dir, "recipe.json");
        Reverie.Imaging.AtomicFile.WriteAllText(recipe, job.Recipe);
        string output = Path.Combine(dir, $"{job.Kind.Replace(' ', '-')}-{job.Id}.png");

        var psi = new ProcessStartInfo(_settings.Reverie[0])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            WorkingDirectory = dir, UseShellExecute = false,
        };
        foreach (var a in _settings.Reverie.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "replay", recipe, "-o", output, "--events-dir", dir }) psi.ArgumentList.Add(a);
        foreach (var (k, v) in _settings.Environment) psi.Environment[k] = v;
        // Whatever the recipe names is read from the data folder and the examples only (Reverie.Imaging.InputFile).
        psi.Environment[Reverie.Imaging.InputFile.RootsVariable] = string.Join(Path.PathSeparator, _settings.ReadRoots);

        var live = _live.GetOrAdd(job.Id, _ => new Live());
        var process = Process.Start(psi) ?? throw new InvalidOperationException("the reverie process did not start");
        lock (live.Lock) live.Process = process;
        Publish(job.Id, StateEvent(job.Id));
        if (live.CancelRequested) Signal(process, 15);

        var errors = new List<string>();
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
                lock (errors) { if (line.StartsWith("error: ", StringComparison.Ordinal) && errors.Count < 10) errors.Add(Cut(line["error: ".Length..])); }
        });
        JsonObject? result = null;
        var sw = Stopwatch.StartNew();
        var lastSaved = Stopwatch.StartNew();
        int previews = 0;
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            JsonObject? e;
            try { e = JsonNode.Parse(line) as JsonObject; } catch (System.Text.Json.JsonException) { continue; }
            if (e is null) continue;
            string kind = e["event"]?.GetValue<string>() ?? "";
            if (kind == "result") { result = e; continue; }
            if (kind == "progress")
            {
                double step = e["step"]?.GetValue<double>() ?? 0, total = e["total"]?.GetValue<double>() ?? 0;
                double fraction = total > 0 ? Math.Clamp(step / total, 0, 1) : 0;
                e["fraction"] = fraction;
                if (fraction > 0.01) e["eta"] = Math.Round(sw.Elapsed.TotalSeconds * (1 - fraction) / fraction, 1);
                if (e["preview"] is { } p) previews = p.GetValue<int>();
                if (lastSaved.ElapsedMilliseconds >= 1000 || fraction >= 1)
                {
                    _store.Progress(job.Id, fraction, e["stage"]?.GetValue<string>(), previews);
                    lastSaved.Restart();
                }
            }
            e["id"] = job.Id;
            lock (live.Lock) live.Last = e;
            Publish(job.Id, e);
        }
        await process.WaitForExitAsync();
        await stderr;
        int code = process.ExitCode;
        var files = result?["files"]?.AsArray().Select(f => Path.GetFileName(f!.GetValue<string>())).ToList() ?? [];
        string? summary = result?["summary"]?.GetValue<string>();
        if (previews > 0) _store.Progress(job.Id, code == 0 ? 1 : _store.Get(job.Id)?.Progress ?? 0, null, previews);
        StudioJobState state = live.CancelRequested ? StudioJobState.Cancelled
            : _stop.IsCancellationRequested && code != 0 ? StudioJobState.Interrupted // the studio is stopping
            : code == 0 ? StudioJobState.Done
            : StudioJobState.Failed;
        string? error = state == StudioJobState.Failed
            ? (errors.Count > 0 ? Cut(string.Join(" ", errors)) : $"The job's process ended with exit code {code}.")
            : null;
        _store.Finish(job.Id, state, summary, error, files);
        process.Dispose();
        Publish(job.Id, StateEvent(job.Id), end: true);
        _live.TryRemove(job.Id, out _);
    }

    /// <summary>A job's error as stored and shown: at most 1,000 characters, whatever the job printed.</summary>
    static string Cut(string error) => error.Length <= 1000 ? error : error[..1000] + "…";

    /// <summary>Cancels a queued or running job; returns false when it had already ended or does not exist.</summary>
    public bool Cancel(long id)
    {
        if (_store.CancelQueued(id))
        {
            Publish(id, StateEvent(id), end: true);
            return true;
        }
        if (_store.Get(id) is not { State: StudioJobState.Running }) return false;
        var live = _live.GetOrAdd(id, _ => new Live());
        lock (live.Lock)
        {
            live.CancelRequested = true;
            if (live.Process is { HasExited: false } p)
            {
                Signal(p, 15); // SIGTERM: the CLI stops at the next step and saves
                KillAfterGrace(p);
            }
        }
        return true;
    }

    /// <summary>Kills the process (SIGKILL) if it is still running <see cref="StudioSettings.CancelGrace"/> after a cancel: a job is always stoppable.</summary>
    void KillAfterGrace(Process p) => _ = Task.Delay(_settings.CancelGrace).ContinueWith(_ =>
    {
        try { if (!p.HasExited) Signal(p, 9); }
        catch (InvalidOperationException) { } // disposed: it ended
    }, TaskScheduler.Default);

    static void Signal(Process p, int signal)
    {
        try { _ = Kill(p.Id, signal); } catch (InvalidOperationException) { }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    /// <summary>The job's row as an event: <c>{"event":"state", ...}</c>.</summary>
    public JsonObject StateEvent(long id)
    {
        var e = new JsonObject { ["event"] = "state" };
        if (_store.Get(id) is { } job) foreach (var (k, v) in Api.JobJson(job)) e[k] = v?.DeepClone();
        return e;
    }

    void Publish(long id, JsonObject e, bool end = false)
    {
        var live = end ? (_live.TryGetValue(id, out var l) ? l : null) : _live.GetOrAdd(id, _ => new Live());
        if (live is null) return;
        string text = e.ToJsonString();
        lock (live.Lock)
        {
            foreach (var f in live.Followers)
            {
                f.Writer.TryWrite(text);
                if (end) f.Writer.TryComplete();
            }
            if (end) live.Followers.Clear();
        }
    }

    /// <summary>
    /// Follows a job: its current state first, then its events as they come (JSON texts), ending after
    /// the job ends. Null when the job does not exist.
    /// </summary>
    public ChannelReader<string>? Follow(long id)
    {
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest });
        var live = _live.GetOrAdd(id, _ => new Live());
        lock (live.Lock)
        {
            var job = _store.Get(id);
            if (job is null) { _live.TryRemove(id, out _); return null; }
            channel.Writer.TryWrite(StateEvent(id).ToJsonString());
            if (job.Ended)
            {
                // Only the final state: the last progress event, still kept while the run winds up, must not follow it.
                channel.Writer.TryComplete();
                if (live.Process is null && live.Followers.Count == 0) _live.TryRemove(id, out _);
            }
            else
            {
                if (live.Last is { } last) channel.Writer.TryWrite(last.ToJsonString());
                live.Followers.Add(channel);
            }
        }
        return channel.Reader;
    }

    /// <summary>Removes a follower that went away.</summary>
    public void Unfollow(long id, ChannelReader<string> reader)
    {
        if (!_live.TryGetValue(id, out var live)) return;
        lock (live.Lock) live.Followers.RemoveAll(c => c.Reader == reader);
    }

    /// <summary>Stops the workers; running jobs are told to stop (their input closes) and awaited briefly.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        foreach (var live in _live.Values)
            lock (live.Lock)
                if (live.Process is { HasExited: false } p) try { p.StandardInput.Close(); } catch (IOException) { }
        try { Task.WaitAll([.. _workers], TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
