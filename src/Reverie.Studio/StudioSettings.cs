using System.Net;

namespace Reverie.Studio;

/// <summary>How a studio runs: where it listens, where it keeps its files, its limits, and how it starts a job.</summary>
public sealed record StudioSettings
{
    /// <summary>The address it listens on; loopback unless a token is given.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>The port (0: any free port).</summary>
    public int Port { get; init; } = 7860;
    /// <summary>The data folder: the job database, uploads, every job's files.</summary>
    public required string Data { get; init; }
    /// <summary>Example photos offered on the pages; recipes may name files under it.</summary>
    public string? Examples { get; init; }
    /// <summary>The access token every request must carry (required for a non-loopback host).</summary>
    public string? AccessToken { get; init; }
    /// <summary>Largest upload, in bytes.</summary>
    public long MaxUploadBytes { get; init; } = 25L * 1024 * 1024;
    /// <summary>Largest upload, in decoded pixels (checked from the header before decoding).</summary>
    public long MaxUploadPixels { get; init; } = 40_000_000;
    /// <summary>Most jobs waiting in the queue; more get 429.</summary>
    public int MaxQueued { get; init; } = 100;
    /// <summary>Jobs running at once (they share the cores).</summary>
    public int Concurrency { get; init; } = 1;
    /// <summary>
    /// The command that runs the reverie CLI (the program and its first arguments, e.g. dotnet and
    /// Reverie.Cli.dll): a job is <c>reverie replay RECIPE -o OUT --events-dir DIR</c> in a process of
    /// its own.
    /// </summary>
    public required IReadOnlyList<string> Reverie { get; init; }
    /// <summary>How long a cancelled job has to stop (and save) on its own before its process is killed.</summary>
    public TimeSpan CancelGrace { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>Environment variables for job processes (the model cache and registry).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>The folders a job may read what its recipe names from: the data folder and the examples.</summary>
    public IEnumerable<string> ReadRoots => new[] { Data, Examples }.OfType<string>();

    /// <summary>Whether <see cref="Host"/> is a loopback address (or localhost).</summary>
    public bool IsLoopback => Host == "localhost" || (IPAddress.TryParse(Host, out var a) && IPAddress.IsLoopback(a));

    /// <summary>Checks the settings; a bad one gets one sentence.</summary>
    public void Validate()
    {
        if (Port is < 0 or > 65535) throw new BadInputException($"--port must be from 0 to 65535; got {Port}.");
        if (Host != "localhost" && !IPAddress.TryParse(Host, out _)) throw new BadInputException($"--host must be an IP address or localhost; got '{BadInputException.Shown(Host)}'.");
        if (!IsLoopback && string.IsNullOrEmpty(AccessToken)) throw new BadInputException($"--host {Host} is not loopback: the studio would be open to the network, so it needs an access token (--token, or let it generate one).");
        if (AccessToken is { Length: < 16 }) throw new BadInputException("--token must be at least 16 characters long.");
        if (Concurrency is < 1 or > 64) throw new BadInputException($"--concurrency must be from 1 to 64; got {Concurrency}.");
        if (MaxQueued is < 1 or > 100_000) throw new BadInputException($"--max-queued must be from 1 to 100000; got {MaxQueued}.");
        if (Reverie.Count == 0) throw new BadInputException("The studio needs the reverie command to run its jobs.");
    }
}
