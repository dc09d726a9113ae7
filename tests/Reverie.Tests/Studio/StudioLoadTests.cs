using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Studio;

/// <summary>Many clients at once on loopback: the queue, the event streams and the database under load.</summary>
public class StudioLoadTests(GoogLeNetCli cli, ITestOutputHelper output) : IClassFixture<GoogLeNetCli>
{
    /// <summary>
    /// 20 clients follow jobs' event streams and poll the job list while 50 small jobs run through the
    /// queue, two at a time: every job ends done, no stream breaks or ends without the job's end, and
    /// no job runs twice.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public async Task TwentyClientsFollowFiftyJobsThroughTheQueue()
    {
        await using var s = await StudioHost.StartAsync(cli.Host, st => st with { Concurrency = 2 });
        string photo = Path.Combine(Paths.RepoRoot, "examples", "coffee.png");
        var ids = new List<long>();
        for (int i = 0; i < 50; i++)
            ids.Add(await s.SubmitAsync(StudioHost.Dream(photo, steps: 2, octaves: 1, maxSize: 48, model: "textures", layer: "conv6", seed: i)));

        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        var broken = new ConcurrentBag<string>();
        var latencies = new ConcurrentBag<double>();
        int streams = 0, events = 0;
        bool allEnded = false;
        async Task Client(int n)
        {
            var rng = new Random(n);
            while (!Volatile.Read(ref allEnded) && DateTime.UtcNow < deadline)
            {
                long id = ids[rng.Next(ids.Count)];
                try
                {
                    var got = await s.EventsAsync(id, TimeSpan.FromMinutes(5));
                    Interlocked.Increment(ref streams);
                    Interlocked.Add(ref events, got.Count);
                    var last = got.LastOrDefault();
                    if (last is null || last["event"]!.GetValue<string>() != "state" || !StudioHost.Ended(last))
                        broken.Add($"job {id}: the stream ended without the job's end ({last?.ToJsonString()})");
                    var sw = System.Diagnostics.Stopwatch.StartNew();
                    var list = await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs");
                    latencies.Add(sw.Elapsed.TotalMilliseconds);
                    if (list!.Count != ids.Count) broken.Add($"the list holds {list.Count} jobs");
                }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                {
                    broken.Add($"job {id}: {e.GetType().Name}: {e.Message}");
                }
            }
        }
        var clients = Enumerable.Range(0, 20).Select(n => Task.Run(() => Client(n))).ToList();
        while (DateTime.UtcNow < deadline)
        {
            var all = (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!.Select(j => j!.AsObject()).ToList();
            if (all.All(StudioHost.Ended)) break;
            await Task.Delay(250);
        }
        Volatile.Write(ref allEnded, true);
        await Task.WhenAll(clients);

        var jobs = (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!.Select(j => j!.AsObject()).ToList();
        var p = latencies.Order().ToList();
        output.WriteLine($"{streams} event streams followed to their end, {events} events; job list latency p50 {p[p.Count / 2]:0.0} ms, p95 {p[(int)(p.Count * 0.95)]:0.0} ms over {p.Count} requests");
        Assert.Empty(broken);
        Assert.Equal(50, jobs.Count);
        Assert.All(jobs, j => Assert.True(j["state"]!.GetValue<string>() == "done", j.ToJsonString()));
        Assert.All(jobs, j => Assert.Equal(1, j["runs"]!.GetValue<int>()));
        Assert.True(streams >= 20, $"only {streams} streams were followed");
    }
}
