using Reverie.Recipes;

namespace Reverie.Cli;

/// <summary>
/// The one layer between commands and the terminal: the action wrapper (errors to one sentence
/// and an exit code, Ctrl+C to cancellation and exit code 130), the job runner, and the progress
/// renderer that draws job events as bars.
/// </summary>
internal static class CliRun
{
    /// <summary>Exit code for an interrupted run (128 + SIGINT).</summary>
    public const int Interrupted = 130;
    /// <summary>Exit code for a run stopped by SIGTERM (128 + 15).</summary>
    public const int Terminated = 143;

    /// <summary>What a command's action gets: the parse result, its writers, and a token that Ctrl+C cancels.</summary>
    internal sealed record Invocation(ParseResult Parse, TextWriter Out, TextWriter Err, CancellationToken Cancel)
    {
        /// <summary>Whether Ctrl+C (not the host) cancelled the run.</summary>
        public bool Interrupted => Cancel.IsCancellationRequested;
        /// <summary>A console for results (tables).</summary>
        public IAnsiConsole Results => ReverieCli.ResultConsole(Out);
        /// <summary>The model registry the options ask for.</summary>
        public Models.Registry.ModelRegistry Registry => ModelLoading.Registry(Parse);
        /// <summary>A job context for this invocation, writing to <paramref name="output"/>.</summary>
        public JobContext Context(Recipe recipe, string output, IProgress<JobEvent> events, string? snapshots = null) =>
            new() { Output = output, Recipe = recipe, Cancel = Cancel, Events = events, Registry = Registry, Snapshots = snapshots, Force = Forced };
        /// <summary>Whether --force was given (commands that write images take it).</summary>
        public bool Forced => Parse.CommandResult.Command.Options.Contains(CommonOptions.Force) && Parse.GetValue(CommonOptions.Force);
    }

    /// <summary>Sets <paramref name="command"/>'s action to a synchronous <paramref name="action"/>, with errors, Ctrl+C and exit codes handled once.</summary>
    public static void SetAction(this Command command, Func<Invocation, int> action) =>
        command.SetAction(inv => Task.FromResult(action(inv)));

    /// <summary>Sets <paramref name="command"/>'s action: <paramref name="action"/> with errors, Ctrl+C and exit codes handled once.</summary>
    public static void SetAction(this Command command, Func<Invocation, Task<int>> action) =>
        command.SetAction(async (p, hostCancel) =>
        {
            var err = p.InvocationConfiguration.Error;
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(hostCancel);
            // Ctrl+C (SIGINT) and SIGTERM (a scheduler's stop, `kill`) stop the run at its next step; it
            // saves what it has, removes its temporary files, and exits with 130 or 143, however long the
            // save takes on a loaded machine. A second Ctrl+C quits at once, as a terminal user expects.
            int interrupts = 0;
            bool terminated = false;
            using var onInt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c =>
            {
                if (Interlocked.Increment(ref interrupts) > 1) { c.Cancel = false; return; } // the default action: quit now
                c.Cancel = true;
                try { err.WriteLine("interrupting: stopping at the next step to save what there is (Ctrl+C again quits at once, saving nothing)."); } catch (IOException) { }
                cts.Cancel();
            });
            using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
            {
                c.Cancel = true;
                terminated = true;
                cts.Cancel();
            });
            try
            {
                int code = await action(new Invocation(p, p.InvocationConfiguration.Output, err, cts.Token));
                return code == Interrupted && terminated ? Terminated : code;
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                err.WriteLine("interrupted: nothing was saved.");
                return terminated ? Terminated : Interrupted;
            }
            catch (Exception ex) { return ReverieCli.Report(ex, err); }
        });

    /// <summary>
    /// Sets <paramref name="command"/>'s action to one job: <paramref name="options"/> reads the options record from
    /// the command line, the file <paramref name="output"/> names (through <paramref name="outputPath"/> when the option
    /// names a folder or a stem) receives the result, and <paramref name="show"/> prints what the job measured.
    /// </summary>
    public static void SetJob<TOptions>(this Command command, IJob job, Option<string?> output, Func<ParseResult, TOptions> options,
        Action<Invocation, TOptions, JobResult>? show = null, Func<string, string>? outputPath = null) where TOptions : JobOptions =>
        command.SetAction(inv =>
        {
            var o = options(inv.Parse);
            string path = inv.Parse.GetValue(output) ?? "";
            return RunJob(inv, job, o, outputPath is null ? path : outputPath(path), show is null ? null : r => show(inv, o, r));
        });

    /// <summary>
    /// Runs a job with a progress display on standard error and its notes as "note:" lines, prints
    /// its summary, and returns 0, or 130 when it was interrupted (it saves what it has).
    /// </summary>
    public static async Task<int> RunJob(Invocation inv, IJob job, JobOptions options, string output, Action<JobResult>? show = null, string? snapshots = null,
        IReadOnlyList<string>? arguments = null)
    {
        options.Validate();
        var recipe = JobCatalog.RecipeFor(job, options, arguments ?? RecipeCapture.From(inv.Parse, hash: false).Arguments); // the job hashes its own inputs
        var result = await WithProgress(inv.Err, events => job.RunAsync(options, inv.Context(recipe, output, events, snapshots)));
        show?.Invoke(result);
        inv.Out.WriteLine(result.Summary);
        return result.Interrupted ? Interrupted : ReverieCli.Ok;
    }

    /// <summary>
    /// Runs a job for another program: its events as JSON lines on standard output and its previews in
    /// <paramref name="eventsDir"/> (see <see cref="EventLines"/>); the end of standard input stops it
    /// as Ctrl+C does. Returns 0, or 130 when it was interrupted.
    /// </summary>
    public static async Task<int> RunJobForProgram(Invocation inv, IJob job, JobOptions options, string output, string eventsDir, IReadOnlyList<string> arguments)
    {
        options.Validate();
        if (!Directory.Exists(eventsDir)) throw new BadInputException($"--events-dir '{BadInputException.Shown(eventsDir)}' does not exist.");
        var recipe = JobCatalog.RecipeFor(job, options, arguments);
        var events = new EventLines(inv.Out, eventsDir);
        using var cancel = EventLines.CancelWhenInputCloses(inv.Cancel);
        var context = new JobContext { Output = output, Recipe = recipe, Cancel = cancel.Token, Events = events, Registry = inv.Registry, Force = inv.Forced, PreviewEvery = 2 };
        JobResult result;
        try { result = await Task.Run(() => job.RunAsync(options, context)); }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { result = new JobResult([], "interrupted before the first step: nothing saved", true); }
        events.Result(result);
        return result.Interrupted ? Interrupted : ReverieCli.Ok;
    }

    /// <summary>
    /// Runs <paramref name="work"/> under one progress display fed by its job events. The display is
    /// redrawn by the job's own thread when it reports (at most ten times a second), never by a
    /// refresh thread of Spectre's: a thread that allocates while the job is inside libtorch can
    /// start a garbage collection whose finalizers free a TorchSharp Scalar libtorch is still
    /// reading (see Reverie's Scalars class); the job's own collections cannot.
    /// </summary>
    public static async Task<T> WithProgress<T>(TextWriter err, Func<IProgress<JobEvent>, Task<T>> work)
    {
        var console = ReverieCli.StatusConsole(err);
        T result = default!;
        await console.Progress()
            .AutoRefresh(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var renderer = new Renderer(ctx, console, err);
                result = await Task.Run(() => work(renderer));
                renderer.Finish();
                ctx.Refresh();
            });
        return result;
    }

    /// <summary>Runs synchronous <paramref name="work"/> on a worker thread under the progress display; it reports through the events it is given.</summary>
    public static Task<T> WithBar<T>(TextWriter err, Func<IProgress<JobEvent>, T> work) =>
        WithProgress(err, events => Task.Run(() => work(events)));

    /// <summary>Progress of <paramref name="done"/> out of <paramref name="total"/>, as an event.</summary>
    public static JobEvent Step(string stage, double done, double total, int scale = 1000) =>
        new() { Stage = stage, Step = (long)Math.Round(done * scale), Total = (long)Math.Round(total * scale) };

    /// <summary>Draws events: one bar for the work, one per download; notes as lines above the bars.</summary>
    sealed class Renderer(ProgressContext ctx, IAnsiConsole console, TextWriter err) : IProgress<JobEvent>
    {
        ProgressTask? _work;
        readonly Dictionary<string, ProgressTask> _downloads = new();
        readonly Lock _lock = new();
        readonly System.Diagnostics.Stopwatch _sinceRefresh = System.Diagnostics.Stopwatch.StartNew();

        public void Report(JobEvent e)
        {
            lock (_lock)
            {
                Update(e);
                if (e.Kind != JobEventKind.Progress || _sinceRefresh.ElapsedMilliseconds >= 100)
                {
                    ctx.Refresh();
                    _sinceRefresh.Restart();
                }
            }
        }

        void Update(JobEvent e)
        {
            {
                switch (e.Kind)
                {
                    case JobEventKind.Note or JobEventKind.Log:
                        // Above a live display Spectre must write the line; elsewhere it is one plain line.
                        string line = (e.Kind == JobEventKind.Note ? "note: " : "") + e.Message;
                        if (console.Profile.Capabilities.Interactive) console.MarkupLine(Markup.Escape(line));
                        else err.WriteLine(line);
                        break;
                    case JobEventKind.Download:
                        if (!_downloads.TryGetValue(e.Stage, out var d)) _downloads[e.Stage] = d = ctx.AddTask(Markup.Escape(e.Stage), maxValue: Math.Max(1, e.Total));
                        if (e.Total > 0) d.MaxValue = e.Total;
                        d.Value = e.Step;
                        break;
                    default:
                        _work ??= ctx.AddTask("working", maxValue: Math.Max(1, e.Total));
                        if (e.Total > 0) _work.MaxValue = e.Total;
                        _work.Value = e.Step;
                        string terms = e.Terms.Count > 0 ? " " + string.Join(" ", e.Terms.Select(t => $"{t.Key} {t.Value:G3}")) : e.Value is { } v ? $": {v:G4}" : "";
                        _work.Description = Markup.Escape(e.Stage + terms);
                        break;
                }
            }
        }

        public void Finish()
        {
            lock (_lock)
            {
                if (_work is not null) _work.Value = _work.MaxValue;
                foreach (var d in _downloads.Values) d.Value = d.MaxValue;
            }
        }
    }
}
