using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Reverie.Studio;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Studio;

/// <summary>
/// A studio in the test process, listening on a free loopback port, with its own data folder; its
/// jobs run the real CLI (Reverie.Cli.dll beside the tests) with the model cache of <paramref name="cli"/>.
/// </summary>
public sealed class StudioHost : IAsyncDisposable
{
    public CliHost Cli { get; }
    public TempDir Data { get; }
    public StudioServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    bool _ownsData;

    StudioHost(CliHost cli, TempDir data, bool ownsData) { Cli = cli; Data = data; _ownsData = ownsData; }

    public static StudioSettings SettingsFor(CliHost cli, string data) => new()
    {
        Port = 0,
        Data = data,
        Examples = Path.Combine(Paths.RepoRoot, "examples"),
        Reverie = ["dotnet", Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll")],
        Environment = new Dictionary<string, string> { ["REVERIE_CACHE"] = cli.Cache, ["REVERIE_REGISTRY"] = cli.Registry },
    };

    public static async Task<StudioHost> StartAsync(CliHost cli, Func<StudioSettings, StudioSettings>? adjust = null, TempDir? data = null)
    {
        var h = new StudioHost(cli, data ?? new TempDir(), data is null);
        var settings = SettingsFor(cli, h.Data.Path);
        if (adjust is not null) settings = adjust(settings);
        h.Server = await StudioServer.StartAsync(settings);
        h.Http = new HttpClient { BaseAddress = h.Server.Address, Timeout = TimeSpan.FromMinutes(3) };
        h.Http.DefaultRequestHeaders.Add("X-Reverie-Csrf", h.Server.CsrfToken);
        if (settings.AccessToken is { } t) h.Http.DefaultRequestHeaders.Add("X-Reverie-Access", t);
        return h;
    }

    public async Task<string> UploadAsync(string file)
    {
        using var form = new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(file)), "file", Path.GetFileName(file) } };
        var r = await Http.PostAsync("/api/uploads", form);
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    /// <summary>A small dream's recipe on an upload or a path.</summary>
    public static JsonObject Dream(string input, int steps = 4, int octaves = 2, int maxSize = 128, string model = "googlenet", string layer = "inception_4c/output", int seed = 0) => new()
    {
        ["command"] = "dream",
        ["options"] = new JsonObject
        {
            ["input"] = input, ["model"] = model, ["layers"] = new JsonArray(layer), ["maxSize"] = maxSize, ["seed"] = seed,
            ["dream"] = new JsonObject { ["octaves"] = octaves, ["steps"] = steps },
        },
    };

    public async Task<long> SubmitAsync(JsonObject recipe)
    {
        var r = await Http.PostAsync("/api/jobs", new StringContent(recipe.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == System.Net.HttpStatusCode.Created, $"{(int)r.StatusCode}: {body}");
        return JsonNode.Parse(body)!["id"]!.GetValue<long>();
    }

    public async Task<JsonObject> JobAsync(long id) => (await Http.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}"))!;

    /// <summary>Polls a job until <paramref name="until"/> holds (bounded).</summary>
    public async Task<JsonObject> WaitAsync(long id, Func<JsonObject, bool> until, TimeSpan? timeout = null)
    {
        var end = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(3));
        while (true)
        {
            var j = await JobAsync(id);
            if (until(j)) return j;
            if (DateTime.UtcNow > end) throw new TimeoutException($"job {id} is still {j["state"]} at {j["progress"]}: {j.ToJsonString()}");
            await Task.Delay(100);
        }
    }

    public static bool Ended(JsonObject j) => j["state"]!.GetValue<string>() is "done" or "failed" or "cancelled" or "interrupted";

    /// <summary>Reads a job's event stream to its end (bounded): the events' JSON objects.</summary>
    public async Task<List<JsonObject>> EventsAsync(long id, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        using var stream = await Http.GetStreamAsync($"/api/jobs/{id}/events", cts.Token);
        using var reader = new StreamReader(stream);
        var events = new List<JsonObject>();
        while (await reader.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.StartsWith("event: end", StringComparison.Ordinal)) break;
            if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(JsonNode.Parse(line[6..])!.AsObject());
        }
        return events;
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (Server is not null) await Server.DisposeAsync();
        if (_ownsData) Data.Dispose();
    }
}
