using Reverie.Models;
using Reverie.Models.Registry;

namespace Reverie.Jobs;

/// <summary>Opens models for jobs and commands: by registry name or file, downloading what the registry knows where to fetch, with download events.</summary>
public sealed class ModelOpener(ModelRegistry registry, IProgress<JobEvent>? events = null, CancellationToken cancel = default)
{
    /// <summary>Opens a model by name or file, downloading it first (with download events) when the registry knows where from.</summary>
    public async Task<INetwork> OpenAsync(string name)
    {
        if (registry.Contains(name))
        {
            var e = registry.Get(name);
            if (registry.Status(e) == ModelStatus.Missing && e.Url is not null && !registry.Offline)
            {
                try { await PullAsync(e); }
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
    /// otherwise the packaged ImageNet network resnet18 (the embedded textures model only if that is
    /// missing), with a one-line notice.
    /// </summary>
    public async Task<INetwork> OpenDreamDefaultAsync()
    {
        const string preferred = "googlenet";
        // Offline, the ImageNet network that comes with the build; the embedded textures model only if even that is missing.
        string fallback = registry.Contains("resnet18") && registry.Status(registry.Get("resnet18")) == ModelStatus.Packaged ? "resnet18" : "textures";
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
                    await PullAsync(e);
                    return await registry.OpenAsync(preferred, cancel: cancel);
                }
                catch (ReverieException ex) when (ex is not BadInputException) { why = $"it could not be downloaded: {ex.Message.TrimEnd('.')}"; }
            }
        }
        else why = "it is not in the registry";
        string what = fallback == "resnet18" ? "the packaged ImageNet network 'resnet18' (at layer3.1)" : $"the embedded '{fallback}' model";
        Report(new JobEvent { Kind = JobEventKind.Note, Message = $"{preferred} is not cached and {why}; dreaming with {what} instead (choose one with --model)." });
        return await registry.OpenAsync(fallback, cancel: cancel);
    }

    /// <summary>Downloads a registry entry, reporting bytes as download events.</summary>
    public Task PullAsync(ModelEntry e, bool force = false) =>
        registry.PullAsync(e.Name, new DownloadEvents(events, e), force, cancel);

    void Report(JobEvent e) => events?.Report(e);

    sealed class DownloadEvents(IProgress<JobEvent>? events, ModelEntry e) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress p) =>
            events?.Report(new JobEvent { Kind = JobEventKind.Download, Stage = $"downloading {e.Name}", Step = p.Received, Total = p.Total ?? e.Size ?? 0 });
    }
}
