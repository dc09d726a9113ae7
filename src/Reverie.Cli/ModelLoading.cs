using Reverie.Models.Registry;

namespace Reverie.Cli;

/// <summary>Opens models for the commands that are not jobs, with the shared progress display for downloads.</summary>
internal static class ModelLoading
{
    public static ModelRegistry Registry(ParseResult p) => new() { Offline = p.GetValue(ReverieCli.Offline) };

    public static Task<INetwork> OpenAsync(ModelRegistry registry, string name, TextWriter err, CancellationToken cancel) =>
        CliRun.WithProgress(err, events => new ModelOpener(registry, events, cancel).OpenAsync(name));

    public static Task PullWithProgressAsync(ModelRegistry registry, ModelEntry e, TextWriter err, CancellationToken cancel, bool force = false) =>
        CliRun.WithProgress(err, async events => { await new ModelOpener(registry, events, cancel).PullAsync(e, force); return 0; });
}
