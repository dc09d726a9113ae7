namespace Reverie.Jobs;

/// <summary>
/// An <see cref="IProgress{T}"/> that calls its handler at once, on the reporting thread, so that
/// reports arrive in order (<see cref="Progress{T}"/> posts them to the thread pool, where a later
/// report can overtake an earlier one). Spectre.Console's progress tasks accept updates from any thread.
/// </summary>
internal sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
