namespace Reverie.Cli;

/// <summary>The `reverie` command line: builds the command tree and maps failures to exit codes (0 ok, 1 failure, 2 bad input).</summary>
public static class ReverieCli
{
    /// <summary>Exit code for success.</summary>
    public const int Ok = 0;
    /// <summary>Exit code for a failure that is not the user's input.</summary>
    public const int Failure = 1;
    /// <summary>Exit code for bad input.</summary>
    public const int BadInput = 2;

    /// <summary>Skip downloads; only cached or embedded models are used.</summary>
    public static readonly Option<bool> Offline = new("--offline") { Description = "Never download; use only cached models.", Recursive = true };

    /// <summary>The CPU threads torch may use, for every command.</summary>
    public static readonly Option<int?> Threads = new("--threads") { Description = $"CPU threads for the network (1 to {MaxThreads}; default: torch's, one per core).", Recursive = true };

    /// <summary>The memory a job may use, for every command that runs one; a job estimated above it is refused before it starts.</summary>
    public static readonly Option<string?> MaxMemory = new("--max-memory") { Description = "Memory a job may use, e.g. 8G or 512M (default: REVERIE_MAX_MEMORY, or three quarters of the machine's); a job estimated above it is refused before it starts.", Recursive = true };

    /// <summary>The most threads --threads accepts: four per core (more only thrash).</summary>
    public static int MaxThreads => 4 * Environment.ProcessorCount;

    /// <summary>
    /// Builds the root command, named <c>reverie</c> whatever the executable is called (the .NET tool,
    /// <c>dotnet Reverie.Cli.dll</c>, the ./reverie script), so that help and usage say <c>reverie</c>.
    /// </summary>
    public static Command Build()
    {
        var root = new Command("reverie", "Reverie shows what a neural network sees: DeepDream, feature visualization, explanations, style and adversarial examples with real trained networks.")
        {
            new System.CommandLine.Help.HelpOption(),
            new VersionOption(),
        };
        root.Options.Add(Offline);
        root.Options.Add(Threads);
        root.Options.Add(MaxMemory);
        root.Subcommands.Add(Commands.Dream.DreamCommand.Create());
        root.Subcommands.Add(Commands.Replay.ReplayCommand.Create());
        root.Subcommands.Add(Commands.Visualize.VisualizeCommand.Create());
        root.Subcommands.Add(Commands.Atlas.AtlasCommand.Create());
        root.Subcommands.Add(Commands.DreamTarget.DreamTargetCommand.Create());
        root.Subcommands.Add(Commands.Invert.InvertCommand.Create());
        root.Subcommands.Add(Commands.Classify.ClassifyCommand.Create());
        root.Subcommands.Add(Commands.Models.ModelsCommand.Create());
        root.Subcommands.Add(Commands.Style.StyleCommand.Create());
        root.Subcommands.Add(Commands.Stylize.StylizeCommand.Create());
        root.Subcommands.Add(Commands.Attack.AttackCommand.Create());
        root.Subcommands.Add(Commands.Explain.ExplainCommand.Create());
        root.Subcommands.Add(Commands.Activations.ActivationsCommand.Create());
        root.Subcommands.Add(Commands.Science.ScienceCommand.Create());
        root.Subcommands.Add(Commands.Train.TrainCommand.Create());
        root.Subcommands.Add(Commands.Evaluate.EvaluateCommand.Create());
        root.Subcommands.Add(Commands.Fool.FoolCommand.Create());
        root.Subcommands.Add(Commands.Studio.StudioCommand.Create());
        root.Subcommands.Add(Commands.Batch.BatchCommand.Create());
        return root;
    }

    /// <summary>
    /// Runs the CLI with the given arguments, writing to <paramref name="stdout"/> and <paramref name="stderr"/>
    /// (the console's by default); <paramref name="cancel"/> stops a running command as Ctrl+C does.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null, CancellationToken cancel = default)
    {
        var o = stdout ?? Console.Out;
        var e = stderr ?? Console.Error;
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // An unknown word also leaves "required command was not provided"; name the word.
            var first = parse.Errors.FirstOrDefault(x => x.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            e.WriteLine($"error: {Plain(first.Message)} (see 'reverie --help').");
            return BadInput;
        }
        if (parse.GetValue(Threads) is { } threads)
        {
            if (threads < 1 || threads > MaxThreads)
            {
                e.WriteLine($"error: --threads must be from 1 to {MaxThreads} (four per core); got {threads}.");
                return BadInput;
            }
            TorchSharp.torch.set_num_threads(threads);
        }
        if (parse.GetValue(MaxMemory) is { } memory)
        {
            // Also for the processes this one starts (the studio's jobs, a local batch).
            try { Jobs.MemoryBudget.Override = Jobs.MemoryBudget.Parse(memory); Environment.SetEnvironmentVariable("REVERIE_MAX_MEMORY", memory); }
            catch (BadInputException ex) { e.WriteLine($"error: {ex.Message}"); return BadInput; }
        }
        // System.CommandLine's own signal handling is off: after a signal it waits 2 s for the action and then
        // returns 130 while the action is still saving, so on a loaded machine the save was lost. CliRun
        // handles SIGINT and SIGTERM itself and waits for the save.
        var config = new InvocationConfiguration { Output = o, Error = e, ProcessTerminationTimeout = null };
        try
        {
            return await parse.InvokeAsync(config, cancel);
        }
        catch (Exception ex)
        {
            return Report(ex, e);
        }
    }

    /// <summary>A parse error in the user's terms: "--steps takes a whole number; got 'NaN'." rather than .NET type names.</summary>
    internal static string Plain(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(.*)' for (?:option|argument) '(.*)' as expected type '([\w.`\[\]]+)'\.?$", System.Text.RegularExpressions.RegexOptions.Singleline);
        if (!m.Success) return BadInputException.Shown(message, 300);
        string type = m.Groups[3].Value;
        string kind = type switch
        {
            _ when type.Contains("Int") => "a whole number",
            _ when type.Contains("Double") || type.Contains("Single") || type.Contains("Decimal") => "a number",
            _ when type.Contains("Boolean") => "true or false",
            _ => "another kind of value",
        };
        return $"{m.Groups[2].Value} takes {kind}; got '{BadInputException.Shown(m.Groups[1].Value)}'.";
    }

    /// <summary>Prints one clear sentence for an exception and returns the exit code.</summary>
    public static int Report(Exception ex, TextWriter e)
    {
        while (ex is AggregateException { InnerExceptions.Count: 1 } a) ex = a.InnerException!;
        switch (ex)
        {
            case BadInputException b: e.WriteLine($"error: {b.Message}"); return BadInput;
            case ReverieException r: e.WriteLine($"error: {r.Message}"); return Failure;
            case OperationCanceledException: e.WriteLine("error: cancelled."); return Failure;
            // The file system's own sentences (no space left, permission denied, a name too long) are clear as they are.
            case IOException or UnauthorizedAccessException: e.WriteLine($"error: {FirstLine(ex.Message)}"); return Failure;
            default: e.WriteLine($"error: {ex.GetType().Name}: {FirstLine(ex.Message)}"); return Failure;
        }
    }

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>A Spectre console for results; when the output is not a terminal, tables are not wrapped at 80 columns.</summary>
    public static IAnsiConsole ResultConsole(TextWriter o)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(o) });
        if (o != Console.Out || Console.IsOutputRedirected) console.Profile.Width = 200;
        return console;
    }

    /// <summary>A Spectre console on standard error, for progress and status that must not mix with results.</summary>
    public static IAnsiConsole StatusConsole(TextWriter e) =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(e) });
}
