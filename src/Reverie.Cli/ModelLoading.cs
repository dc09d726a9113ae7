using System.CommandLine;
using Reverie.Models;
using Reverie.Models.Registry;
using Spectre.Console;

namespace Reverie.Cli;

/// <summary>Opens models for commands, with a download progress bar.</summary>
internal static class ModelLoading
{
    public static ModelRegistry Registry(ParseResult p) => new() { Offline = p.GetValue(ReverieCli.Offline) };

    public static async Task<INetwork> OpenAsync(ModelRegistry registry, string name, TextWriter err, CancellationToken cancel)
    {
        if (registry.Contains(name))
        {
            var e = registry.Get(name);
            if (registry.Status(e) == ModelStatus.Missing && e.Url is not null && !registry.Offline)
            {
                try { await PullWithProgressAsync(registry, e, err, cancel); }
                catch (ReverieException ex) when (ex is not BadInputException)
                {
                    throw new ReverieException($"Model '{name}' is not cached and could not be downloaded ({ex.Message.TrimEnd('.')}); install it offline with 'reverie models add {name} FILE'.", ex);
                }
            }
        }
        return await registry.OpenAsync(name, cancel: cancel);
    }

    /// <summary>
    /// The model a dream uses when none is named: googlenet when it is cached or can be downloaded,
    /// otherwise the embedded textures model, with a one-line notice.
    /// </summary>
    public static async Task<INetwork> OpenDreamDefaultAsync(ModelRegistry registry, TextWriter err, CancellationToken cancel)
    {
        const string preferred = "googlenet", fallback = "textures";
        string why;
        if (registry.Contains(preferred))
        {
            var e = registry.Get(preferred);
            if (registry.Status(e) != ModelStatus.Missing) return await registry.OpenAsync(preferred, cancel: cancel);
            if (registry.Offline) why = "--offline forbids downloading it";
            else
            {
                try
                {
                    await PullWithProgressAsync(registry, e, err, cancel);
                    return await registry.OpenAsync(preferred, cancel: cancel);
                }
                catch (ReverieException ex) when (ex is not BadInputException) { why = $"it could not be downloaded: {ex.Message.TrimEnd('.')}"; }
            }
        }
        else why = "it is not in the registry";
        err.WriteLine($"note: {preferred} is not cached and {why}; dreaming with the embedded '{fallback}' model instead (choose one with --model).");
        return await registry.OpenAsync(fallback, cancel: cancel);
    }

    public static async Task PullWithProgressAsync(ModelRegistry registry, ModelEntry e, TextWriter err, CancellationToken cancel, bool force = false)
    {
        var console = ReverieCli.StatusConsole(err);
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask($"downloading {e.Name}", maxValue: e.Size ?? 1);
                var progress = new SyncProgress<DownloadProgress>(p =>
                {
                    if (p.Total is { } t) task.MaxValue = t;
                    task.Value = p.Received;
                });
                await registry.PullAsync(e.Name, progress, force, cancel);
                task.Value = task.MaxValue;
            });
    }
}
