using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Reverie.Studio;

namespace Reverie.Bench;

/// <summary>
/// What the studio adds to a dream. In one run, alternating A B A B: the CLI's dream of
/// examples/coffee.png at 512 px (process start to exit), and the same recipe through a studio
/// (submission to the job's end), while 20 clients poll the API; reported: the studio/CLI time
/// ratio, the time from the job's start to its first preview arriving over the event stream, and
/// the API's latency percentiles under those 20 clients.
/// </summary>
internal static class StudioBenchmark
{
    public static int Run(string[] args)
    {
        int reps = 3;
        for (int i = 0; i < args.Length - 1; i++) if (args[i] == "--reps") reps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        string root = Paths.Root();
        string work = Directory.CreateTempSubdirectory("reverie-bench-studio-").FullName;
        string cache = Path.Combine(work, "cache"), registry = Path.Combine(work, "models.json");
        string cliDll = Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll");
        var env = new Dictionary<string, string> { ["REVERIE_CACHE"] = cache, ["REVERIE_REGISTRY"] = registry };
        (int Code, string Err) Cli(params string[] a)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add(cliDll);
            foreach (var x in a) psi.ArgumentList.Add(x);
            foreach (var (k, v) in env) psi.Environment[k] = v;
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, err.Result);
        }
        if (Cli("models", "add", "googlenet", Paths.BvlcGoogLeNet(root), "--force").Code != 0) throw new InvalidOperationException("cannot install googlenet");
        string photo = Path.Combine(root, "examples", "coffee.png");
        string[] dreamArgs = ["dream", photo, "--max-size", "512", "--seed", "0"];

        var settings = new StudioSettings
        {
            Port = 0, Data = Path.Combine(work, "studio"), Examples = Path.Combine(root, "examples"),
            Reverie = ["dotnet", cliDll], Environment = env,
        };
        var studio = StudioServer.StartAsync(settings).GetAwaiter().GetResult();
        using var http = new HttpClient { BaseAddress = studio.Address, Timeout = TimeSpan.FromMinutes(10) };
        http.DefaultRequestHeaders.Add("X-Reverie-Csrf", studio.CsrfToken);

        var cliTimes = new List<double>();
        var studioAlone = new List<double>();
        var studioLoaded = new List<double>();
        var firstPreview = new List<double>();
        var latencies = new List<double>();
        var untilRunning = new List<double>();
        var dreamInside = new List<double>();
        (double Total, double Preview, List<double> Latencies) ThroughStudio(string recipe, int clients)
        {
            using var stop = new CancellationTokenSource();
            var pollLatencies = new List<double>();
            var pollers = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
            {
                var mine = new List<double>();
                while (!stop.IsCancellationRequested)
                {
                    var t = Stopwatch.StartNew();
                    await http.GetStringAsync("/api/jobs");
                    mine.Add(t.Elapsed.TotalMilliseconds);
                    await Task.Delay(100);
                }
                lock (pollLatencies) pollLatencies.AddRange(mine);
            })).ToList();
            var sw = Stopwatch.StartNew();
            var post = http.PostAsync("/api/jobs", new StringContent(recipe, System.Text.Encoding.UTF8, "application/json")).Result;
            long id = JsonNode.Parse(post.Content.ReadAsStringAsync().Result)!["id"]!.GetValue<long>();
            double? started = null, preview = null;
            using (var stream = http.GetStreamAsync($"/api/jobs/{id}/events").Result)
            using (var reader = new StreamReader(stream))
                while (reader.ReadLine() is { } line)
                {
                    if (line.StartsWith("event: end", StringComparison.Ordinal)) break;
                    if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                    var e = JsonNode.Parse(line[6..])!;
                    if (e["event"]!.GetValue<string>() == "state" && e["state"]!.GetValue<string>() == "running") started ??= sw.Elapsed.TotalSeconds;
                    if (e["preview"] is JsonValue) preview ??= sw.Elapsed.TotalSeconds;
                }
            double total = sw.Elapsed.TotalSeconds;
            stop.Cancel();
            Task.WaitAll([.. pollers]);
            var job = http.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}").Result!;
            if (job["state"]!.GetValue<string>() != "done") throw new InvalidOperationException(job.ToJsonString());
            if (clients == 0)
            {
                untilRunning.Add(started ?? 0);
                // The job's own account of its dream, from its summary: "… (512x341, inception_4c/output, 5.5 s)".
                var m = System.Text.RegularExpressions.Regex.Match(job["summary"]!.GetValue<string>(), @"([0-9.]+) s\)$");
                if (m.Success) dreamInside.Add(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
            }
            return (total, preview!.Value - (started ?? 0), pollLatencies);
        }
        for (int r = -1; r < reps; r++) // r = -1: warm-up, not counted
        {
            string outPng = Path.Combine(work, $"cli-{r}.png");
            var sw = Stopwatch.StartNew();
            var (code, err) = Cli([.. dreamArgs, "-o", outPng]);
            if (code != 0) throw new InvalidOperationException(err);
            double cli = sw.Elapsed.TotalSeconds;
            string recipe = File.ReadAllText(Reverie.Imaging.OutputFiles.SidecarOf(outPng));
            var alone = ThroughStudio(recipe, 0);
            var loaded = ThroughStudio(recipe, 20);
            if (r < 0) continue;
            cliTimes.Add(cli);
            studioAlone.Add(alone.Total);
            studioLoaded.Add(loaded.Total);
            firstPreview.Add(alone.Preview);
            latencies.AddRange(loaded.Latencies);
        }
        studio.DisposeAsync().AsTask().Wait();

        static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
        static double Pct(List<double> v, double p) { var s = v.Order().ToList(); return s[Math.Min(s.Count - 1, (int)(s.Count * p))]; }
        Console.WriteLine($"dream of coffee.png at 512 px (4 octaves x 10 steps), median of {reps}, alternating CLI, studio, studio under 20 clients:");
        Console.WriteLine($"| run | time |");
        Console.WriteLine($"|---|---|");
        Console.WriteLine($"| CLI, process start to exit | {Median(cliTimes):0.00} s |");
        Console.WriteLine($"| studio, submission to the job's end | {Median(studioAlone):0.00} s (ratio to the CLI **{Median(studioAlone) / Median(cliTimes):0.000}**) |");
        Console.WriteLine($"| studio, the same while 20 clients poll the API every 100 ms | {Median(studioLoaded):0.00} s (ratio {Median(studioLoaded) / Median(cliTimes):0.000}) |");
        Console.WriteLine($"| studio: submission to the job's process running / the dream inside it (its summary) | {Median(untilRunning):0.00} s / {Median(dreamInside):0.00} s |");
        Console.WriteLine($"| job start to first preview in the event stream | {Median(firstPreview):0.00} s |");
        Console.WriteLine($"| GET /api/jobs under 20 clients: p50 / p95 / max | {Pct(latencies, 0.5):0.0} / {Pct(latencies, 0.95):0.0} / {latencies.Max():0.0} ms over {latencies.Count} requests |");
        Directory.Delete(work, true);
        return 0;
    }
}
