using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Studio;

/// <summary>`reverie studio` as its own process, killed during a job and started again on the same data.</summary>
public class StudioRestartTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    sealed class StudioProcess : IDisposable
    {
        public Process Process { get; }
        public HttpClient Http { get; }

        public StudioProcess(CliHost cli, string data)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), "studio", "--port", "0", "--data", data, "--examples", Path.Combine(Paths.RepoRoot, "examples") })
                psi.ArgumentList.Add(a);
            psi.Environment["REVERIE_CACHE"] = cli.Cache;
            psi.Environment["REVERIE_REGISTRY"] = cli.Registry;
            Process = Process.Start(psi)!;
            var first = Process.StandardOutput.ReadLineAsync();
            if (!first.Wait(TimeSpan.FromMinutes(1)) || first.Result is not { } line || !line.StartsWith("Reverie studio: ", StringComparison.Ordinal))
            {
                Process.Kill(true);
                throw new InvalidOperationException("the studio did not start: " + Process.StandardError.ReadToEnd());
            }
            Http = new HttpClient { BaseAddress = new Uri(line["Reverie studio: ".Length..].Trim()), Timeout = TimeSpan.FromMinutes(2) };
            string csrf = Http.GetFromJsonAsync<JsonObject>("/api/session").Result!["csrf"]!.GetValue<string>();
            Http.DefaultRequestHeaders.Add("X-Reverie-Csrf", csrf);
        }

        public async Task<JsonObject> Job(long id) => (await Http.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}"))!;

        public async Task<JsonObject> Wait(long id, Func<JsonObject, bool> until)
        {
            var end = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            while (true)
            {
                var j = await Job(id);
                if (until(j)) return j;
                if (DateTime.UtcNow > end) throw new TimeoutException(j.ToJsonString());
                await Task.Delay(100);
            }
        }

        public void Dispose()
        {
            Http.Dispose();
            if (!Process.HasExited) { Process.Kill(true); Process.WaitForExit(); }
            Process.Dispose();
        }
    }

    static string State(JsonObject j) => j["state"]!.GetValue<string>();

    static bool JobProcessAlive(string dir) =>
        Directory.EnumerateDirectories("/proc").Any(p =>
        {
            try { return File.ReadAllText(Path.Combine(p, "cmdline")).Contains(dir, StringComparison.Ordinal); }
            catch (IOException) { return false; }
            catch (UnauthorizedAccessException) { return false; }
        });

    [Fact]
    public async Task KilledDuringAJobTheStudioRestartsWithTheJobInterruptedAndResumesIt()
    {
        using var data = Paths.Temp();
        long quick, slow;
        using (var a = new StudioProcess(cli.Host, data.Path))
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(Paths.Sample("coffee.png"))), "file", "coffee.png" } };
            var up = await a.Http.PostAsync("/api/uploads", form);
            string id = (await up.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
            async Task<long> Submit(System.Text.Json.Nodes.JsonObject recipe)
            {
                var r = await a.Http.PostAsync("/api/jobs", new StringContent(recipe.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
                Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
                return (await r.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>();
            }
            quick = await Submit(StudioHost.Dream(id, steps: 2, octaves: 1));
            Assert.Equal("done", State(await a.Wait(quick, StudioHost.Ended)));
            slow = await Submit(StudioHost.Dream(id, steps: 60, octaves: 1, maxSize: 224));
            await a.Wait(slow, j => State(j) == "running" && j["preview"] is JsonValue && j["progress"]!.GetValue<double>() > 0.05);
            a.Process.Kill(); // SIGKILL: no chance to tidy up
            a.Process.WaitForExit();
        }
        // The job's own process sees its input close, stops and exits: nothing is left running.
        string slowDir = Path.Combine(data.Path, "jobs", slow.ToString());
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (JobProcessAlive(slowDir) && DateTime.UtcNow < until) await Task.Delay(100);
        Assert.False(JobProcessAlive(slowDir), "the job's process outlived the studio");

        using (var db = new SqliteConnection($"Data Source={Path.Combine(data.Path, "studio.db")}"))
        {
            db.Open();
            using var check = db.CreateCommand();
            check.CommandText = "PRAGMA integrity_check";
            Assert.Equal("ok", check.ExecuteScalar());
        }

        using var b = new StudioProcess(cli.Host, data.Path);
        var interrupted = await b.Job(slow);
        Assert.Equal("interrupted", State(interrupted));
        Assert.Equal(HttpStatusCode.OK, (await b.Http.GetAsync(interrupted["preview"]!.GetValue<string>())).StatusCode);
        var done = await b.Job(quick);
        Assert.Equal("done", State(done));
        Assert.Equal(HttpStatusCode.OK, (await b.Http.GetAsync(done["files"]![0]!.GetValue<string>())).StatusCode);

        Assert.Equal(HttpStatusCode.Accepted, (await b.Http.PostAsync($"/api/jobs/{slow}/resume", null)).StatusCode);
        var resumed = await b.Wait(slow, StudioHost.Ended);
        Assert.Equal("done", State(resumed));
        Assert.Equal(2, resumed["runs"]!.GetValue<int>());
        Assert.Equal(2, (await b.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!.Count);
        Assert.Equal(HttpStatusCode.Conflict, (await b.Http.PostAsync($"/api/jobs/{quick}/resume", null)).StatusCode);
    }
}
