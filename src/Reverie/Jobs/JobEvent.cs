using static TorchSharp.torch;

namespace Reverie.Jobs;

/// <summary>What a job event tells.</summary>
public enum JobEventKind
{
    /// <summary>Work done: stage, step of total, loss terms, maybe a preview.</summary>
    Progress,
    /// <summary>A one-line notice for the user (a fallback model, a shrunk image).</summary>
    Note,
    /// <summary>A model being downloaded: bytes of total.</summary>
    Download,
    /// <summary>A line of the job's log (an epoch's metrics), shown as it is.</summary>
    Log,
}

/// <summary>
/// One event of a running job. The CLI renders them as progress bars, the studio streams them to a
/// browser, a batch shard logs them; none of these knows how the job works.
/// </summary>
public sealed record JobEvent
{
    /// <summary>What the event tells.</summary>
    public JobEventKind Kind { get; init; } = JobEventKind.Progress;
    /// <summary>Where the job is, e.g. "frame 2/10 octave 3/4" (or the model being downloaded).</summary>
    public string Stage { get; init; } = "";
    /// <summary>Steps done over the whole job (bytes for a download).</summary>
    public long Step { get; init; }
    /// <summary>Steps in the whole job (bytes for a download; 0 when unknown).</summary>
    public long Total { get; init; }
    /// <summary>The objective's value at this step, when there is one.</summary>
    public double? Value { get; init; }
    /// <summary>Named loss terms at this step.</summary>
    public IReadOnlyDictionary<string, double> Terms { get; init; } = new Dictionary<string, double>();
    /// <summary>The image as it stands [N,3,H,W] in 0..1, every <see cref="JobContext.PreviewEvery"/> steps; valid only while the event is handled (clone to keep it).</summary>
    public Tensor? Preview { get; init; }
    /// <summary>The notice, for <see cref="JobEventKind.Note"/>.</summary>
    public string? Message { get; init; }
    /// <summary>The fraction done, 0..1.</summary>
    public double Fraction => Total > 0 ? Math.Clamp((double)Step / Total, 0, 1) : 0;
}
