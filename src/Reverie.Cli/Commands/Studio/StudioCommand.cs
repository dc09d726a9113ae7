using Reverie.Studio;

namespace Reverie.Cli.Commands.Studio;

/// <summary><c>reverie studio [--port 7860] [--host 127.0.0.1] [--data DIR]</c>: the local web studio (see <see cref="StudioServer"/>).</summary>
internal static class StudioCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "The port to listen on (0: any free port).", DefaultValueFactory = _ => 7860 };
        var host = new Option<string>("--host") { Description = "The address to listen on; anything but loopback needs an access token.", DefaultValueFactory = _ => "127.0.0.1" };
        var data = new Option<string?>("--data") { Description = "The studio's folder: job database, uploads, outputs (default: $XDG_DATA_HOME/reverie/studio, else ~/.local/share/reverie/studio)." };
        var token = new Option<string?>("--token") { Description = "The access token every request must carry (generated and printed when --host is not loopback and none is given)." };
        var examples = new Option<string?>("--examples") { Description = "A folder of example photos for the pages (default: ./examples when it exists)." };
        var concurrency = new Option<int>("--concurrency") { Description = "Jobs that run at once (they share the cores).", DefaultValueFactory = _ => 1 };
        var maxQueued = new Option<int>("--max-queued") { Description = "Most jobs waiting; more are refused with 429.", DefaultValueFactory = _ => 100 };
        var cmd = new Command("studio", "Open the local web studio: dream with live previews, a job queue, a gallery.") { port, host, data, token, examples, concurrency, maxQueued };
        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            string h = p.GetValue(host)!;
            string? t = p.GetValue(token);
            var settings = new StudioSettings
            {
                Host = h,
                Port = p.GetValue(port),
                Data = Path.GetFullPath(p.GetValue(data) ?? DefaultData()),
                Examples = p.GetValue(examples) is { } exDir ? Path.GetFullPath(exDir) : Directory.Exists("examples") ? Path.GetFullPath("examples") : null,
                Concurrency = p.GetValue(concurrency),
                MaxQueued = p.GetValue(maxQueued),
                Reverie = ThisCommand(),
            };
            if (!settings.IsLoopback && t is null) t = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
            settings = settings with { AccessToken = t };
            if (settings.Examples is { } e && !Directory.Exists(e)) throw new BadInputException($"--examples '{BadInputException.Shown(e)}' is not a folder.");
            StudioServer studio;
            try { studio = await StudioServer.StartAsync(settings, inv.Cancel); }
            catch (IOException ex) when (ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new BadInputException($"Port {settings.Port} on {settings.Host} is in use; choose another with --port.");
            }
            await using (studio)
            {
                var url = studio.Address;
                inv.Out.WriteLine($"Reverie studio: {url}{(t is null ? "" : $"?token={t}")}");
                inv.Out.WriteLine($"data: {settings.Data}   (Ctrl+C stops it; running jobs save what they have and show as interrupted)");
                try { await Task.Delay(Timeout.Infinite, inv.Cancel); } catch (OperationCanceledException) { }
                inv.Err.WriteLine("stopping the studio.");
            }
            return ReverieCli.Ok;
        });
        return cmd;
    }

    static string DefaultData() =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } x ? x : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share"), "reverie", "studio");

    /// <summary>How to run this reverie again: the tool's own executable, or dotnet and this assembly.</summary>
    static string[] ThisCommand()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        string entry = typeof(StudioCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? [process, entry] : [process];
    }
}
