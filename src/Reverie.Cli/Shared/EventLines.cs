using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;

namespace Reverie.Cli;

/// <summary>
/// A job's events for another program (the studio's worker, a batch shard): one JSON object per line
/// on standard output, and the latest preview as <c>DIR/preview.jpg</c>, replaced atomically before
/// the line that announces it. The run stops, saving what it has, when its standard input closes,
/// so a studio that dies takes its jobs with it.
/// </summary>
/// <remarks>
/// Lines: <c>{"event":"progress","stage","step","total","value","terms","preview"}</c> (preview: the
/// preview's number, when one was written), <c>{"event":"note"|"log","message"}</c>,
/// <c>{"event":"download","stage","step","total"}</c>, and last
/// <c>{"event":"result","summary","files","interrupted"}</c>.
/// </remarks>
internal sealed class EventLines(TextWriter output, string previewDir) : IProgress<JobEvent>
{
    /// <summary>At most this many previews a second: encoding one costs the job a few milliseconds.</summary>
    const double PreviewsPerSecond = 4;

    readonly Lock _lock = new();
    readonly System.Diagnostics.Stopwatch _sincePreview = System.Diagnostics.Stopwatch.StartNew();
    int _previews;

    public void Report(JobEvent e)
    {
        var line = new JsonObject { ["event"] = e.Kind.ToString().ToLowerInvariant() };
        if (e.Kind is JobEventKind.Note or JobEventKind.Log) line["message"] = e.Message;
        else
        {
            line["stage"] = e.Stage;
            line["step"] = e.Step;
            line["total"] = e.Total;
            if (e.Value is { } v && double.IsFinite(v)) line["value"] = v;
            if (e.Terms.Count > 0) line["terms"] = new JsonObject(e.Terms.Where(t => double.IsFinite(t.Value)).Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value)));
            bool last = e.Total > 0 && e.Step >= e.Total;
            if (e.Preview is { } preview && (last || _sincePreview.Elapsed.TotalSeconds >= 1 / PreviewsPerSecond))
            {
                var (rgba, w, h) = ImageIO.ToRgba(preview.shape[0] > 1 ? preview[..1] : preview);
                AtomicFile.WriteAllBytes(Path.Combine(previewDir, "preview.jpg"), ImageIO.Encode(rgba, w, h, SkiaSharp.SKEncodedImageFormat.Jpeg, 85));
                line["preview"] = ++_previews;
                _sincePreview.Restart();
            }
        }
        Write(line);
    }

    /// <summary>The last line: what the job produced.</summary>
    public void Result(JobResult r) => Write(new JsonObject
    {
        ["event"] = "result",
        ["summary"] = r.Summary,
        ["files"] = new JsonArray([.. r.Files.Select(f => (JsonNode?)Path.GetFullPath(f))]),
        ["interrupted"] = r.Interrupted,
    });

    void Write(JsonObject line)
    {
        lock (_lock)
        {
            output.WriteLine(line.ToJsonString(JsonSerializerOptions.Default));
            output.Flush();
        }
    }

    /// <summary>A token cancelled when standard input reaches its end (the parent closed it or died).</summary>
    public static CancellationTokenSource CancelWhenInputCloses(CancellationToken linked)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(linked);
        var watcher = new Thread(() =>
        {
            try
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                while (stdin.Read(buffer, 0, buffer.Length) > 0) { }
            }
            catch (IOException) { }
            try { cts.Cancel(); } catch (ObjectDisposedException) { }
        }) { IsBackground = true, Name = "stdin watcher" };
        watcher.Start();
        return cts;
    }
}
