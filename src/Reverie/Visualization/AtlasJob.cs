using System.Globalization;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Objectives;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>The options of <c>reverie atlas</c>: a layer, its channels, and the visualization settings.</summary>
public sealed record AtlasJobOptions : JobOptions
{
    /// <summary>The layer.</summary>
    public required string Layer { get; init; }
    /// <summary>Channels: <c>A..B</c>, <c>A-B</c> or a list; ranges stop at the layer's last channel.</summary>
    public string Channels { get; init; } = "0..63";
    /// <summary>Channels optimized together in one batch.</summary>
    public int PerBatch { get; init; } = 8;
    /// <summary>The optimization's settings (the batch is set per chunk); its seed and precision are the job's.</summary>
    public VisualizeOptions Visualize { get; init; } = new();
    /// <summary>Keep each channel's visualization in the channel cache and reuse what is there (see <c>ChannelCache</c>; the studio's microscope reads it).</summary>
    public bool Cache { get; init; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        (Visualize with { Batch = 1 }).Validate();
        if (PerBatch < 1 || PerBatch > 64) throw new BadInputException($"--per-batch must be from 1 to 64; got {PerBatch}.");
    }

    /// <inheritdoc/>
    internal override MemoryEstimate? EstimateMemory() => MemoryEstimate.Optimized(Model ?? "googlenet", PerBatch, Visualize.Size);

    /// <summary>Parses "0..63", "0-15" or "3,7,9" against a layer of <paramref name="count"/> channels: a range is cut at the last channel, a channel past it is refused.</summary>
    public List<int> ParseChannels(long count)
    {
        var result = new List<int>();
        foreach (var part in Channels.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Contains("..") ? part.Split("..") : part.Split('-');
            if (range.Length is < 1 or > 2 || !range.All(r => r.Length is > 0 and < 7 && r.All(char.IsAsciiDigit)))
                throw new BadInputException($"--channels '{BadInputException.Shown(Channels)}': '{BadInputException.Shown(part)}' is not a channel or a range like 0..63.");
            int a = int.Parse(range[0], CultureInfo.InvariantCulture), b = int.Parse(range[^1], CultureInfo.InvariantCulture);
            if (a >= count) throw new BadInputException($"--channels '{BadInputException.Shown(Channels)}': channel {a} is out of range; the layer has channels 0-{count - 1}.");
            if (b < a) throw new BadInputException($"--channels '{BadInputException.Shown(Channels)}': the range {part} runs backwards.");
            for (int c = a; c <= Math.Min(b, count - 1); c++) result.Add(c);
        }
        if (result.Count == 0) throw new BadInputException($"--channels '{BadInputException.Shown(Channels)}' selects no channel.");
        return result;
    }
}

/// <summary>What an atlas holds.</summary>
internal sealed record AtlasResults(string Model, string Layer, IReadOnlyList<int> Channels);

/// <summary><c>reverie atlas</c> as a job: one visualization per channel of a layer, in a labelled grid; each image of a batch maximizes its own channel.</summary>
internal sealed class AtlasJob : Job<AtlasJobOptions>
{
    /// <inheritdoc/>
    public override string Kind => "atlas";
    /// <inheritdoc/>
    internal override bool HonoursBFloat16 => true;

    /// <inheritdoc/>
    protected override async Task<JobResult> RunAsync(AtlasJobOptions o, JobContext c)
    {
        c.CheckImageOutput();
        using var net = await c.OpenModelAsync(o.Model ?? "googlenet");
        string tensor = net.ResolveLayer(o.Layer);
        var info = net.Layers.First(l => l.Name == tensor || l.Aliases.Contains(tensor));
        long count = info.Channels;
        var list = o.ParseChannels(count);
        o.Prepare(net);
        var tiles = new List<Tensor>();
        int steps = o.Visualize.Steps, done = 0, fromCache = 0;
        string? cache = o.Cache ? ChannelCache.Dir(c.Registry, o.Model ?? "googlenet", info.Name, o.Visualize, o.Precision) : null;
        string? CacheFile(int ch) => cache is null ? null : ChannelCache.File(cache, ch, o.Visualize, o.Seed);
        for (int start = 0; start < list.Count && !c.Cancel.IsCancellationRequested; start += o.PerBatch)
        {
            var chunk = list.Skip(start).Take(o.PerBatch).ToList();
            var kept = chunk.Select(ch => CacheFile(ch) is { } f ? ChannelCache.Load(f) : null).ToArray();
            var missing = chunk.Where((_, i) => kept[i] is null).ToList();
            if (missing.Count > 0)
            {
                Objective obj = missing.Select((ch, i) => (Objective)new ChannelObjective(tensor, ch, o.Layer, i)).Aggregate((a, b) => a + b);
                var options = o.Visualize with { Batch = missing.Count, Seed = o.Seed + start, BFloat16 = o.BFloat16 };
                var progress = c.Steps((long)start * steps, (long)list.Count * steps, s => $"channels {chunk[0]}-{chunk[^1]}: step {s.Step}/{s.Steps}");
                var scaled = new Scaled(progress, chunk.Count);
                var r = await Task.Run(() => new FeatureVisualizer(net, obj, options).RunFull(scaled, c.Cancel));
                if (r.Cancelled) break;
                for (int i = 0, m = 0; i < chunk.Count; i++)
                    if (kept[i] is null) kept[i] = cache is null ? r.Image.narrow(0, m++, 1) : ChannelCache.Keep(r.Image.narrow(0, m++, 1), CacheFile(chunk[i]));
            }
            else
                c.Report(new JobEvent { Stage = $"channels {chunk[0]}-{chunk[^1]}: from the cache", Step = (long)(start + chunk.Count) * steps, Total = (long)list.Count * steps });
            fromCache += chunk.Count - missing.Count;
            tiles.Add(cat(kept!, 0));
            done += chunk.Count;
        }
        if (cache is not null) c.Note($"{fromCache} of {done} channels from the cache, {done - fromCache} made; cache: {cache}");
        bool interrupted = c.Cancel.IsCancellationRequested;
        if (tiles.Count == 0) return new JobResult([], "interrupted before the first batch was done; nothing saved", true);
        var shown = list.Take(done).ToList();
        int columns = (int)Math.Ceiling(Math.Sqrt(shown.Count));
        var grid = Grid.Make(tiles, columns, shown.Select(ch => ch.ToString(CultureInfo.InvariantCulture)).ToList());
        var results = new AtlasResults(net.Name, o.Layer, shown);
        c.Save(grid, c.Output, results, done * steps, interrupted);
        return new JobResult([c.Output], $"{c.Output} ({shown.Count} channels of {o.Layer})", interrupted, results);
    }

    /// <summary>A batch of N images is N channels' worth of work.</summary>
    sealed class Scaled(IProgress<Optimization.OptimizationStep> inner, int n) : IProgress<Optimization.OptimizationStep>
    {
        public void Report(Optimization.OptimizationStep s) => inner.Report(s with { Done = s.Done * n });
    }
}
