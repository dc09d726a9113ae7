using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Reverie.Recipes;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Studio;

/// <summary>
/// The fuzz harness of issue 36 extended to the studio: every route the studio maps (read from the
/// server, so a new route is covered without editing this file) gets hostile path segments, query
/// values and bodies (empty, truncated, deeply nested, invalid UTF-8, oversized with and without a
/// Content-Length, malformed multipart), and the job route gets hostile recipes. Every answer must be a
/// 2xx or a 4xx whose body is one short sentence, never a 5xx, a stack trace, a .NET name or a quoted
/// file; each request is bounded (30 s). Accepted jobs must end by themselves or by cancellation.
/// Then recipes inside PNGs: the same hostile recipes read by the studio and replayed by the CLI.
/// </summary>
public class StudioFuzzTests(ITestOutputHelper log) : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _box = new();
    public void Dispose() { _cli.Dispose(); _box.Dispose(); }

    static readonly string[] Segments = ["0", "-1", "9223372036854775808", "abc", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "%00", "%1B%5D0%3Bpwned%07", new string('a', 300), "1e3", "%E2%80%AE"];
    static readonly string[] QueryValues = ["", "-1", "NaN", "99999999999", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "%00", "%1B%5B2J", new string('q', 300)];
    static readonly string[] QueryNames = ["state", "kind", "model", "layer", "channel", "size", "steps", "seed", "token"];

    /// <summary>A body written in 64 kB pieces with no Content-Length (so sent chunked).</summary>
    sealed class Chunked(long bytes, byte fill) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var piece = Enumerable.Repeat(fill, 1 << 16).ToArray();
            for (long sent = 0; sent < bytes; sent += piece.Length) await stream.WriteAsync(piece.AsMemory(0, (int)Math.Min(piece.Length, bytes - sent)));
        }
        protected override bool TryComputeLength(out long length) { length = -1; return false; }
    }

    static HttpContent Json(string text) => new StringContent(text, Encoding.UTF8, "application/json");

    static HttpContent Raw(byte[] bytes, string type)
    {
        var c = new ByteArrayContent(bytes);
        c.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(type);
        return c;
    }

    /// <summary>Hostile bodies for any route that takes one.</summary>
    static IEnumerable<(string What, Func<HttpContent?> Body)> Bodies()
    {
        yield return ("no body", () => null);
        foreach (var t in new[] { "", "null", "[]", "{}", "\"x\"", "{\"command\":", "{\"command\":\"dream\",\"options\":" + new string('[', 5000) })
            yield return ($"JSON {t[..Math.Min(t.Length, 30)]}", () => Json(t));
        yield return ("nesting 100,000 deep", () => Json(new string('[', 100_000) + new string(']', 100_000)));
        yield return ("invalid UTF-8", () => Raw([0x7B, 0xFF, 0xFE, 0xC0, 0x80, 0x7D], "application/json"));
        yield return ("2 MB with its length", () => Json("{\"command\":\"" + new string('d', 2_000_000) + "\"}"));
        yield return ("20 MB chunked", () => { var c = new Chunked(20_000_000, (byte)'['); c.Headers.ContentType = new("application/json"); return c; });
        yield return ("text/plain", () => new StringContent("dream photo.png", Encoding.UTF8, "text/plain"));
        yield return ("multipart, boundary never closed", () => Raw(Encoding.ASCII.GetBytes("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n\r\n\x89PNG"), "multipart/form-data; boundary=b"));
        yield return ("multipart, no boundary", () => Raw(Encoding.ASCII.GetBytes("hello"), "multipart/form-data"));
        yield return ("multipart, no file field", () => new MultipartFormDataContent { { new StringContent("x"), "other" } });
        yield return ("multipart, a text file", () => new MultipartFormDataContent { { new ByteArrayContent(Encoding.ASCII.GetBytes("root:x:0:0")), "file", "passwd.png" } });
        yield return ("multipart, an empty file", () => new MultipartFormDataContent { { new ByteArrayContent([]), "file", "empty.png" } });
        yield return ("multipart, a hostile file name", () => new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(Paths.Sample("coffee.png"))), "file", "../../\u001b]0;pwned\u0007" + new string('n', 500) + ".png" } });
    }

    /// <summary>Recipes that are valid JSON but hostile: unknown or side-effect commands, paths out, devices, pipes, absurd numbers, control characters.</summary>
    internal static IEnumerable<(string What, JsonObject Recipe)> HostileRecipes(string outside)
    {
        JsonObject Job(string command, JsonObject options) => new() { ["command"] = command, ["options"] = options };
        foreach (var command in new[] { "batch", "models", "studio", "replay", "zoom", "../dream", "", "dream\n" })
            yield return ($"command '{command.Trim()}'", Job(command, new JsonObject { ["model"] = "textures" }));
        foreach (var path in new[] { "/etc/passwd", "/dev/zero", "/proc/self/fd/0", "/proc/self/environ", "../../../../etc/passwd", "x\u0000y.png", new string('p', 2000) + ".png", outside + "/../../etc/passwd", "\u001b[2J.png" })
        {
            yield return ($"dream input {path[..Math.Min(path.Length, 30)]}", Job("dream", new JsonObject { ["input"] = path, ["model"] = "textures", ["layers"] = new JsonArray("conv6") }));
            yield return ($"direction from {path[..Math.Min(path.Length, 30)]}", Job("visualize", new JsonObject { ["model"] = "textures", ["objective"] = $"direction:conv6@{path}", ["visualize"] = new JsonObject { ["steps"] = 1, ["size"] = 32 } }));
            yield return ($"model {path[..Math.Min(path.Length, 30)]}", Job("visualize", new JsonObject { ["model"] = path, ["objective"] = "conv6:0", ["visualize"] = new JsonObject { ["steps"] = 1, ["size"] = 32 } }));
        }
        foreach (var n in new JsonNode?[] { -1, 0, 1e308, "NaN", "Infinity", "9".PadRight(400, '9'), null, new JsonArray(), new JsonObject() })
            yield return ($"visualize size {n?.ToJsonString() ?? "null"}", Job("visualize", new JsonObject { ["model"] = "textures", ["objective"] = "conv6:0", ["visualize"] = new JsonObject { ["steps"] = 1, ["size"] = n?.DeepClone() } }));
        yield return ("an unknown option", Job("visualize", new JsonObject { ["model"] = "textures", ["objective"] = "conv6:0", ["__proto__"] = 1 }));
        yield return ("options not an object", new JsonObject { ["command"] = "visualize", ["options"] = "conv6" });
        yield return ("old-style arguments", new JsonObject { ["command"] = "dream", ["arguments"] = new JsonArray("dream", "@/etc/passwd", "--force", "-o", outside + "/x.png") });
    }

    static readonly Regex Leak = new(@"System\.[A-Z]|[A-Za-z]+Exception\b|   at |root:x:|PATH=", RegexOptions.Compiled);

    /// <summary>What is wrong with an answer, or null.</summary>
    static string? Judge(HttpStatusCode status, string type, string body)
    {
        int code = (int)status;
        if (code >= 500) return $"{code}: {body[..Math.Min(body.Length, 200)]}";
        if (Leak.IsMatch(body)) return $"{code} leaks: {body[..Math.Min(body.Length, 200)]}";
        if (code < 400) return null;
        if (!type.StartsWith("application/json", StringComparison.Ordinal)) return $"{code} with a {type} body: {body[..Math.Min(body.Length, 100)]}";
        string? error;
        try { error = JsonNode.Parse(body)?["error"]?.GetValue<string>(); } catch (System.Text.Json.JsonException) { error = null; }
        if (string.IsNullOrWhiteSpace(error)) return $"{code} without an error sentence: {body[..Math.Min(body.Length, 100)]}";
        if (error.Length > 600 || error.Any(char.IsControl)) return $"{code} with an error of {error.Length} characters or a control character";
        return null;
    }

    [Fact]
    public async Task EveryRouteAnswersHostileRequestsWithASentence()
    {
        string outside = Directory.CreateDirectory(_box.File("outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "keep.txt"), "the user's");
        await using var s = await StudioHost.StartAsync(_cli, st => st with
        {
            // A hostile job that gets through runs small: a job estimated above 2 GB is refused before it starts.
            Environment = new Dictionary<string, string>(st.Environment) { ["REVERIE_MAX_MEMORY"] = "2G" },
            CancelGrace = TimeSpan.FromSeconds(5),
        });
        s.Http.Timeout = TimeSpan.FromSeconds(30);
        string photo = await s.UploadAsync(Paths.Sample("coffee.png"));
        long job = await s.SubmitAsync(StudioHost.Dream(photo, steps: 1, octaves: 1, maxSize: 48, model: "textures", layer: "conv6"));
        await s.WaitAsync(job, StudioHost.Ended, TimeSpan.FromMinutes(2));

        var routes = s.Server.Routes;
        var requests = new List<(string Method, string Url, string What, Func<HttpContent?> Body)>();
        foreach (var (methods, pattern) in routes)
        {
            // Hostile path segments; then, on the route with real values (the finished job, an example's
            // name), hostile query values and bodies.
            var hostile = Regex.IsMatch(pattern, @"\{[^}]+\}") ? Segments.Select(v => Regex.Replace(pattern, @"\{[^}]+\}", v)).ToList() : [];
            string real = Regex.Replace(pattern, @"\{[^}]+\}", m => m.Value.StartsWith("{id") ? job.ToString() : "coffee.png");
            foreach (var method in methods)
            {
                foreach (var url in hostile) requests.Add((method, url, "segment", () => null));
                requests.Add((method, real, "plain", () => null));
                foreach (var name in QueryNames)
                    foreach (var v in QueryValues) requests.Add((method, $"{real}?{name}={v}&{name}=2", $"?{name}", () => null));
                if (method is "POST" or "PUT" or "DELETE")
                    foreach (var (what, body) in Bodies()) requests.Add((method, real, what, body));
            }
        }
        foreach (var (what, recipe) in HostileRecipes(outside))
            requests.Add(("POST", "/api/jobs", what, () => Json(recipe.ToJsonString())));
        // A method no route takes, and addresses no route has.
        requests.Add(("PATCH", "/api/jobs", "PATCH", () => null));
        requests.Add(("GET", "/api/no-such-route", "unknown", () => null));
        requests.Add(("GET", "/%2e%2e/%2e%2e/etc/passwd", "traversal", () => null));

        // Deleting the finished job comes last, so that the routes before see it.
        requests = [.. requests.OrderBy(r => r.Method == "DELETE")];
        var failures = new List<string>();
        var accepted = new List<long>();
        int cancelled = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var statuses = new SortedDictionary<int, int>();
        long largest = 0;
        string largestAt = "";
        foreach (var (method, url, what, body) in requests)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = body() };
            string shown = $"{method} {url[..Math.Min(url.Length, 70)]} ({what})";
            try
            {
                using var r = await s.Http.SendAsync(request);
                string text = await r.Content.ReadAsStringAsync();
                if (text.Length > largest) { largest = text.Length; largestAt = shown; }
                statuses[(int)r.StatusCode] = statuses.GetValueOrDefault((int)r.StatusCode) + 1;
                // Files are served as they are (an example photo, a job's image); everything else is judged.
                // (and the pages, the script and the style sheet, which are the studio's own text).
                string media = r.Content.Headers.ContentType?.MediaType ?? "";
                bool file = media.StartsWith("image/") || (r.IsSuccessStatusCode && media is "text/html" or "text/javascript" or "application/javascript" or "text/css");
                // A NUL in the request target is refused by Kestrel itself, before any of the studio's code, with an empty 400.
                bool protocol = (int)r.StatusCode == 400 && url.Contains("%00") && text.Length == 0;
                if (!file && !protocol && Judge(r.StatusCode, r.Content.Headers.ContentType?.ToString() ?? "none", text) is { } wrong) failures.Add($"{shown}: {wrong}");
                if (method == "POST" && (int)r.StatusCode == 201 && JsonNode.Parse(text)?["id"] is { } id && url.StartsWith("/api/jobs"))
                {
                    // A hostile recipe's job is followed to its end; the reruns of the finished dream are real work, cancelled at once.
                    if (url == "/api/jobs") accepted.Add(id.GetValue<long>());
                    else { cancelled++; (await s.Http.DeleteAsync($"/api/jobs/{id}")).Dispose(); }
                }
            }
            catch (TaskCanceledException) { failures.Add($"{shown}: no answer in 30 s"); }
            catch (HttpRequestException e) { failures.Add($"{shown}: the connection failed ({e.Message})"); }
        }
        double requestSeconds = sw.Elapsed.TotalSeconds;

        // Accepted jobs end by themselves (most fail at once) or are cancelled; none outlives the grace.
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        var states = new Dictionary<long, JsonObject>();
        foreach (var id in accepted)
        {
            var left = until - DateTime.UtcNow;
            JsonObject j = left > TimeSpan.Zero ? await s.WaitAsync(id, StudioHost.Ended, left).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null!) : null!;
            if (j is null)
            {
                await s.Http.DeleteAsync($"/api/jobs/{id}");
                j = await s.WaitAsync(id, StudioHost.Ended, TimeSpan.FromSeconds(40));
            }
            states[id] = j;
            if (j["error"]?.GetValue<string>() is { } error && (Leak.IsMatch(error) || error.Length > 1001)) failures.Add($"job {id} ({j["kind"]}): its error leaks or is long: {error[..Math.Min(error.Length, 200)]}");
        }
        // The studio still answers, briefly, and nothing outside its folder changed.
        var list = await s.Http.GetAsync("/api/jobs");
        string all = await list.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.True(all.Length < 1_000_000, $"GET /api/jobs is {all.Length} characters after the fuzz");
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(outside).Select(Path.GetFileName));
        Assert.Equal("the user's", File.ReadAllText(Path.Combine(outside, "keep.txt")));

        log.WriteLine($"{requests.Count} requests over {routes.Count} routes in {requestSeconds:0} s; statuses {string.Join(", ", statuses.Select(kv => $"{kv.Key}×{kv.Value}"))}; largest answer {largest} characters ({largestAt})");
        log.WriteLine($"{cancelled} reruns of the finished job cancelled at once; {accepted.Count} hostile recipes accepted at submit: {string.Join(", ", states.Values.GroupBy(j => j["state"]!.GetValue<string>()).Select(g => $"{g.Count()} {g.Key}"))}; {sw.Elapsed.TotalSeconds:0} s in all");
        Assert.True(failures.Count == 0, $"{failures.Count} of {requests.Count} requests failed:\n" + string.Join("\n", failures.OrderBy(f => f.Contains(": 5") ? 0 : 1).Take(40)));
    }

    [Fact]
    public async Task RecipesInPngsAreReadAsDataByTheStudioAndReplay()
    {
        string outside = Directory.CreateDirectory(_box.File("outside")).FullName;
        string work = Directory.CreateDirectory(_box.File("work")).FullName;
        await using var s = await StudioHost.StartAsync(_cli);
        s.Http.Timeout = TimeSpan.FromSeconds(30);
        byte[] plain;
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            string p = Path.Combine(work, "plain.png");
            Reverie.Imaging.ImageIO.Save(TorchSharp.torch.zeros(1, 3, 8, 8), p);
            plain = File.ReadAllBytes(p);
            File.Delete(p);
        }
        // Recipe texts: the hostile recipes, old-style commands with side effects, and text that is not a recipe.
        var texts = HostileRecipes(outside).Select(h => (h.What, Text: h.Recipe.ToJsonString())).ToList();
        foreach (var args in new[] { new[] { "batch", "slurm", "m.json", "--submit" }, ["models", "remove", "textures"], ["dream", "@/etc/passwd"],
                     ["dream", "in.png", "-m", "textures", "--force", "-o", outside + "/x.png", "--snapshots:" + outside] })
            texts.Add(($"old-style {args[0]} {args[1]}", new JsonObject { ["command"] = args[0], ["arguments"] = new JsonArray([.. args.Select(a => (JsonNode?)a)]) }.ToJsonString()));
        foreach (var t in new[] { "", "{", "null", "[]", "{\"command\":null}", new string('{', 10_000), "{\"command\":\"dream\",\"options\":{\"input\":\"" + new string('i', 200_000) + "\"}}" })
            texts.Add(($"text {t[..Math.Min(t.Length, 20)]}", t));

        var failures = new List<string>();
        var codes = new SortedDictionary<int, int>();
        var statuses = new SortedDictionary<int, int>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int k = 0;
        foreach (var (what, text) in texts)
        {
            // PNG text chunks are Latin-1: what cannot be written so is carried as '?'.
            string latin = new(text.Select(c => c > 0xFF ? '?' : c).ToArray());
            string png = Path.Combine(work, $"r{k++}.png");
            File.WriteAllBytes(png, PngText.Insert(plain, Recipe.Keyword, latin));
            var before = Directory.EnumerateFiles(work).ToHashSet();

            using var form = new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(png)), "file", "r.png" } };
            var r = await s.Http.PostAsync("/api/recipes/read", form);
            string body = await r.Content.ReadAsStringAsync();
            statuses[(int)r.StatusCode] = statuses.GetValueOrDefault((int)r.StatusCode) + 1;
            if (Judge(r.StatusCode, r.Content.Headers.ContentType?.ToString() ?? "none", body) is { } wrong) failures.Add($"read {what}: {wrong}");

            var (code, _, err) = _cli.RunInProcess(["replay", png], TimeSpan.FromSeconds(60));
            codes[code] = codes.GetValueOrDefault(code) + 1;
            var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (code == 2 && (lines.Length != 1 || !lines[0].StartsWith("error: "))) failures.Add($"replay {what}: exit 2 with {lines.Length} lines: {err.Trim()[..Math.Min(err.Trim().Length, 200)]}");
            else if (code is not (0 or 2)) failures.Add($"replay {what}: exit {code}: {err.Trim()[..Math.Min(err.Trim().Length, 200)]}");
            if (Leak.IsMatch(err)) failures.Add($"replay {what}: leaks: {err.Trim()[..Math.Min(err.Trim().Length, 200)]}");
            if (Directory.EnumerateFileSystemEntries(outside).Any()) failures.Add($"replay {what}: wrote outside its folder");
            // A replay writes only its own output (NAME-replay.png and its recipe) beside the PNG.
            foreach (var f in Directory.EnumerateFiles(work).Where(f => !before.Contains(f)))
            {
                if (!Path.GetFileName(f).StartsWith(Path.GetFileNameWithoutExtension(png) + "-replay")) failures.Add($"replay {what}: wrote {Path.GetFileName(f)}");
                File.Delete(f);
            }
        }
        log.WriteLine($"{texts.Count} recipes in PNGs in {sw.Elapsed.TotalSeconds:0} s: studio statuses {string.Join(", ", statuses.Select(kv => $"{kv.Key}×{kv.Value}"))}; replay exit codes {string.Join(", ", codes.Select(kv => $"{kv.Key}×{kv.Value}"))}");
        Assert.True(failures.Count == 0, $"{failures.Count} failures:\n" + string.Join("\n", failures.Take(40)));
    }
}
