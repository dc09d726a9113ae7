using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Reverie.Bench;

/// <summary>
/// <c>reverie batch</c> on this machine, for the estimate of a whole-network microscope on a cluster:
/// a microscope of N channels of GoogLeNet's inception_4a/output (default: the studio's settings, 128 px,
/// 128 steps), run as one shard of one thread, as two concurrent shards of one thread each (what a
/// two-core node runs), and as one shard of two threads; the overhead of a shard's start (process,
/// manifest, checks; timed on a finished manifest) and of an item's start (the model opened, the
/// first step: an item of 1 step); the merge. From those, the wall time of the microscope of every
/// mixed layer of GoogLeNet on 10, 100 and 1,000 two-core nodes, an estimate.
/// </summary>
internal static class BatchBenchmark
{
    public static int Run(string[] args)
    {
        int n = 8, size = 128, steps = 128;
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--items") n = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--size") size = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--steps") steps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        string root = Paths.Root();
        string work = Directory.CreateTempSubdirectory("reverie-bench-batch-").FullName;
        string cliDll = Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll");
        var env = new Dictionary<string, string> { ["REVERIE_CACHE"] = Path.Combine(work, "cache"), ["REVERIE_REGISTRY"] = Path.Combine(work, "models.json") };
        Process Start(params string[] a)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add(cliDll);
            foreach (var x in a) psi.ArgumentList.Add(x);
            foreach (var (k, v) in env) psi.Environment[k] = v;
            return Process.Start(psi)!;
        }
        string Finish(Process p)
        {
            var err = p.StandardError.ReadToEndAsync();
            string o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"reverie exited {p.ExitCode}: {err.Result}");
            p.Dispose();
            return o;
        }
        string Cli(params string[] a) => Finish(Start(a));
        Cli("models", "add", "googlenet", Paths.BvlcGoogLeNet(root), "--force");

        var layers = JsonNode.Parse(Cli("models", "layers", "googlenet", "--json"))!.AsArray();
        var mixed = layers.Where(l => ((string)l!["name"]!).StartsWith("inception_", StringComparison.Ordinal) && ((string)l!["name"]!).EndsWith("/output", StringComparison.Ordinal)).ToList();
        long channels = mixed.Sum(l => (long)l!["channels"]!);

        string Plan(string name, int itemSteps, int threads)
        {
            string dir = Path.Combine(work, name);
            Directory.CreateDirectory(dir);
            string m = Path.Combine(dir, "m.json");
            Cli("batch", "plan", "microscope", "-m", "googlenet", "--layers", "inception_4a/output", "--channels", $"0..{n - 1}",
                "--steps", itemSteps.ToString(CultureInfo.InvariantCulture), "--size", size.ToString(CultureInfo.InvariantCulture), "--out", Path.Combine(dir, "out"), "-o", m, "--threads-per-item", threads.ToString(CultureInfo.InvariantCulture));
            return m;
        }
        double Timed(Action a) { var sw = Stopwatch.StartNew(); a(); return sw.Elapsed.TotalSeconds; }

        string one = Plan("one", steps, 1), two = Plan("two", steps, 1), wide = Plan("wide", steps, 2), tiny = Plan("tiny", 1, 1);
        double tOne = Timed(() => Cli("batch", "run", one, "--shard", "0/1"));
        double tTwo = Timed(() => { var a = Start("batch", "run", two, "--shard", "0/2"); var b = Start("batch", "run", two, "--shard", "1/2"); Finish(a); Finish(b); });
        double tWide = Timed(() => Cli("batch", "run", wide, "--shard", "0/1"));
        double tTiny = Timed(() => Cli("batch", "run", tiny, "--shard", "0/1"));
        var noop = Enumerable.Range(0, 3).Select(_ => Timed(() => Cli("batch", "run", one, "--shard", "0/1"))).Order().ToList();
        double tMerge = Timed(() => Cli("batch", "merge", one));

        double shardStart = noop[1];
        double itemStart = (tTiny - shardStart) / n;            // model opened, first step, files written
        double itemOne = (tOne - shardStart) / n;               // an item alone on the machine, one thread
        double itemTwo = (tTwo - shardStart) / (n / 2.0);       // an item while another shard runs beside it
        double itemWide = (tWide - shardStart) / n;             // an item with both cores
        double perMinOne = 60 * n / tOne, perMinTwo = 60 * n / tTwo, perMinWide = 60 * n / tWide;
        double mergePerItem = Math.Max(0, tMerge - shardStart) / n; // the merge process starts once

        Console.WriteLine($"batch: microscope items of GoogLeNet inception_4a/output at {size} px, {steps} steps; {n} items per run; machine: {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("| run | wall | items per minute | seconds per item |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| 1 shard × 1 thread | {tOne:F1} s | {perMinOne:F2} | {itemOne:F2} |");
        Console.WriteLine($"| 2 concurrent shards × 1 thread | {tTwo:F1} s | **{perMinTwo:F2}** ({perMinTwo / perMinOne:F2}×) | {itemTwo:F2} (each shard) |");
        Console.WriteLine($"| 1 shard × 2 threads | {tWide:F1} s | {perMinWide:F2} ({perMinWide / perMinOne:F2}×) | {itemWide:F2} |");
        Console.WriteLine();
        Console.WriteLine($"shard start (process, manifest, {n} items verified; a finished manifest, median of 3): {shardStart:F2} s");
        Console.WriteLine($"item start (model opened, 1 step, files written; an item of 1 step): {itemStart:F2} s = {100 * itemStart / itemOne:F0} % of a {steps}-step item");
        Console.WriteLine($"merge: {tMerge:F2} s for {n} items ({mergePerItem * 1000:F0} ms per item after the process start)");
        Console.WriteLine();
        // The estimate: every mixed layer's channels as items, spread evenly; each node runs two one-thread
        // shards (the best throughput above); a shard's start once per shard; the merge on one machine.
        Console.WriteLine($"estimate (not measured): the microscope of GoogLeNet's {mixed.Count} mixed layers, {channels} channels, at these settings");
        Console.WriteLine("| nodes (2 cores) | shards | items per shard | wall |");
        Console.WriteLine("|---|---|---|---|");
        foreach (int nodes in new[] { 1, 10, 100, 1000 })
        {
            int shards = nodes * 2;
            long perShard = (channels + shards - 1) / shards;
            double wall = shardStart + perShard * itemTwo + channels * mergePerItem;
            Console.WriteLine($"| {nodes} | {shards} | {perShard} | {Human(wall)} |");
        }
        Directory.Delete(work, true);
        return 0;
    }

    static string Human(double seconds) => seconds switch
    {
        < 120 => $"{seconds:F0} s",
        < 7200 => $"{seconds / 60:F0} min",
        < 172800 => $"{seconds / 3600:F1} h",
        _ => $"{seconds / 86400:F1} days",
    };
}
