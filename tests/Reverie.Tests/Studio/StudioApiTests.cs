using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using Reverie.Recipes;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Studio;

/// <summary>The studio's API in process, on a loopback port, with its jobs run by the real CLI on GoogLeNet.</summary>
public class StudioApiTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    static string State(JsonObject j) => j["state"]!.GetValue<string>();

    [Fact]
    public async Task SubmitFollowEventsListDownloadAndDelete()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string upload = await s.UploadAsync(Paths.Sample("chelsea.png"));
        long id = await s.SubmitAsync(StudioHost.Dream(upload, steps: 4, octaves: 2));
        var events = await s.EventsAsync(id);

        Assert.Equal("state", events[0]["event"]!.GetValue<string>());
        var progress = events.Where(e => e["event"]!.GetValue<string>() == "progress").ToList();
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), progress.Select(e => e["step"]!.GetValue<long>()).Distinct());
        Assert.All(progress, e => Assert.Equal(8, e["total"]!.GetValue<long>()));
        Assert.All(progress, e => Assert.True(double.IsFinite(e["value"]!.GetValue<double>())));
        Assert.True(progress.Count(e => e["preview"] is not null) >= 2, "previews arrive while the dream runs");
        var last = events[^1];
        Assert.Equal("state", last["event"]!.GetValue<string>());
        Assert.Equal("done", State(last));

        // The output: a PNG carrying the recipe, whose input is the upload under the data folder.
        string url = last["files"]!.AsArray().Single()!.GetValue<string>();
        byte[] png = await s.Http.GetByteArrayAsync(url);
        var recipe = Recipe.FromJson(PngText.Read(png)[Recipe.Keyword], "the output");
        Assert.Equal("dream", recipe.Command);
        string input = recipe.Options!["input"]!.GetValue<string>();
        Assert.StartsWith(Path.Combine(s.Data.Path, "uploads", upload), input);
        Assert.Equal(File.ReadAllBytes(Paths.Sample("chelsea.png")), File.ReadAllBytes(input));
        using (var img = ImageIO.Decode(png)) Assert.Equal(128, Math.Max(img.shape[2], img.shape[3]));
        Assert.Equal(200, (int)(await s.Http.GetAsync($"/api/jobs/{id}/preview")).StatusCode);

        var list = (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!;
        Assert.Contains(list, j => j!["id"]!.GetValue<long>() == id && State(j.AsObject()) == "done");
        var gallery = (await s.Http.GetFromJsonAsync<JsonArray>("/api/gallery?kind=dream&model=googlenet"))!;
        Assert.Single(gallery);
        Assert.Empty((await s.Http.GetFromJsonAsync<JsonArray>("/api/gallery?model=resnet18"))!);

        // Deleting an ended job removes it and its files.
        Assert.Equal(HttpStatusCode.NoContent, (await s.Http.DeleteAsync($"/api/jobs/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Http.GetAsync($"/api/jobs/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Http.GetAsync(url)).StatusCode);
        Assert.False(Directory.Exists(Path.Combine(s.Data.Path, "jobs", id.ToString())));
    }

    [Fact]
    public async Task CancelsAQueuedJobAtOnceAndARunningOneKeepingWhatItMade()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string upload = await s.UploadAsync(Paths.Sample("coffee.png"));
        long running = await s.SubmitAsync(StudioHost.Dream(upload, steps: 400, octaves: 1, maxSize: 224));
        long queued = await s.SubmitAsync(StudioHost.Dream(upload, steps: 2, octaves: 1));
        await s.WaitAsync(running, j => State(j) == "running" && j["progress"]!.GetValue<double>() > 0, TimeSpan.FromMinutes(2));
        Assert.Equal("queued", State(await s.JobAsync(queued)));

        Assert.Equal(HttpStatusCode.Accepted, (await s.Http.DeleteAsync($"/api/jobs/{queued}")).StatusCode);
        Assert.Equal("cancelled", State(await s.JobAsync(queued)));
        Assert.Equal(0, (await s.JobAsync(queued))["runs"]!.GetValue<int>());

        Assert.Equal(HttpStatusCode.Accepted, (await s.Http.DeleteAsync($"/api/jobs/{running}")).StatusCode);
        var j = await s.WaitAsync(running, StudioHost.Ended, TimeSpan.FromMinutes(2));
        Assert.Equal("cancelled", State(j));
        Assert.True(j["progress"]!.GetValue<double>() < 1);
        // The CLI stopped at its next step and saved the dream so far, marked interrupted.
        byte[] png = await s.Http.GetByteArrayAsync(j["files"]!.AsArray().Single()!.GetValue<string>());
        var recipe = Recipe.FromJson(PngText.Read(png)[Recipe.Keyword], "the output");
        Assert.True(recipe.Interrupted);
        Assert.InRange(recipe.Steps!.Value, 1, 399);
        // Cancelling an ended job again is a conflict-free delete; a job that does not exist is 404.
        Assert.Equal(HttpStatusCode.NotFound, (await s.Http.DeleteAsync("/api/jobs/999")).StatusCode);
    }

    /// <summary>A recipe made by the CLI runs unchanged through the API, and the studio's output replays in the CLI: the same pixels each time.</summary>
    [Fact]
    public async Task AttackMethodsComeWithTheirDefaultsAndDeepFoolWithoutACapChangesTheAnswer()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        var methods = (await s.Http.GetFromJsonAsync<JsonArray>("/api/attack-methods"))!.Select(m => m!.AsObject()).ToList();
        Assert.Equal(Enum.GetValues<Reverie.Adversarial.AttackMethod>().Length, methods.Count);
        var deepFool = methods.Single(m => m["name"]!.GetValue<string>() == "deepfool");
        Assert.Equal("deepFool", deepFool["value"]!.GetValue<string>());
        Assert.Equal(50, deepFool["steps"]!.GetValue<int>());
        Assert.True(deepFool["optionalEps"]!.GetValue<bool>() && deepFool["l2"]!.GetValue<bool>());
        var square = methods.Single(m => m["name"]!.GetValue<string>() == "square");
        Assert.True(square["blackBox"]!.GetValue<bool>() && !square["optionalEps"]!.GetValue<bool>());
        Assert.Equal(1000, square["steps"]!.GetValue<int>());

        // What the studio's form now sends for DeepFool: no cap (eps 0) and its 50 steps. Before, the form sent
        // its L-infinity slider's 0.01, which capped DeepFool's L2 change at 0.01 and left the answer unchanged.
        string upload = await s.UploadAsync(Paths.Sample("coffee.png"));
        long id = await s.SubmitAsync(new JsonObject
        {
            ["command"] = "attack",
            ["options"] = new JsonObject { ["input"] = upload, ["model"] = "googlenet", ["attack"] = new JsonObject { ["method"] = "deepFool", ["eps"] = 0, ["steps"] = 50 } },
        });
        var j = await s.WaitAsync(id, StudioHost.Ended);
        Assert.True(State(j) == "done", j.ToJsonString());
        var results = (await s.Http.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}/recipe"))!["results"]!;
        Assert.NotEqual(results["before"]!["index"]!.GetValue<int>(), results["after"]!["index"]!.GetValue<int>());
    }

    [Fact]
    public async Task RecipeRoundTripCliToApiToCliIsBitForBit()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        Directory.CreateDirectory(Path.Combine(s.Data.Path, "photos"));
        string photo = Path.Combine(s.Data.Path, "photos", "coffee.png");
        File.Copy(Paths.Sample("coffee.png"), photo);
        string cliOut = Path.Combine(s.Data.Path, "photos", "cli.png");
        var r = cli.Host.Run("dream", photo, "--layer", "inception_4b/output", "--octaves", "2", "--steps", "3", "--max-size", "128", "--seed", "7", "-o", cliOut);
        Assert.True(r.Code == 0, r.Err);

        string recipeJson = File.ReadAllText(OutputFiles.SidecarOf(cliOut));
        var post = await s.Http.PostAsync("/api/jobs", new StringContent(recipeJson, System.Text.Encoding.UTF8, "application/json"));
        Assert.True(post.StatusCode == HttpStatusCode.Created, await post.Content.ReadAsStringAsync());
        long id = JsonNode.Parse(await post.Content.ReadAsStringAsync())!["id"]!.GetValue<long>();
        var j = await s.WaitAsync(id, StudioHost.Ended);
        Assert.True(State(j) == "done", j.ToJsonString());
        string studioOut = Path.Combine(s.Data.Path, "photos", "studio.png");
        File.WriteAllBytes(studioOut, await s.Http.GetByteArrayAsync(j["files"]!.AsArray().Single()!.GetValue<string>()));

        string replayed = Path.Combine(s.Data.Path, "photos", "replayed.png");
        r = cli.Host.Run("replay", studioOut, "-o", replayed);
        Assert.True(r.Code == 0, r.Err);

        using var a = ImageIO.Load(cliOut);
        using var b = ImageIO.Load(studioOut);
        using var c = ImageIO.Load(replayed);
        static bool Same(Tensor x, Tensor y) => x.shape.SequenceEqual(y.shape) && x.eq(y).all().item<bool>();
        Assert.True(Same(a, b), "the studio's run of the CLI's recipe gives the CLI's pixels");
        Assert.True(Same(b, c), "the CLI's replay of the studio's output gives its pixels");
        Assert.Equal(Recipe.Load(cliOut).Options!.ToJsonString(), Recipe.Load(studioOut).Options!.ToJsonString());
    }

    [Fact]
    public async Task RecipesAreCheckedLikeTheCliAndKeptInsideTheirFolders()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string upload = await s.UploadAsync(Paths.Sample("coffee.png"));
        async Task Refused(JsonObject recipe, int status, string mustContain)
        {
            var r = await s.Http.PostAsync("/api/jobs", new StringContent(recipe.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
            string body = await r.Content.ReadAsStringAsync();
            Assert.True((int)r.StatusCode == status, $"{(int)r.StatusCode}: {body}");
            Assert.Contains(mustContain, JsonNode.Parse(body)!["error"]!.GetValue<string>());
        }
        var bad = StudioHost.Dream(upload);
        bad["options"]!["dream"]!["octaves"] = 0;
        await Refused(bad, 400, "--octaves");
        await Refused(StudioHost.Dream("/etc/passwd"), 400, "outside the studio's data folder");
        await Refused(StudioHost.Dream(Paths.Sample("coffee.png")), 400, "outside the studio's data folder");
        await Refused(StudioHost.Dream("photos/../../../etc/passwd"), 400, "climbs out");
        await Refused(StudioHost.Dream(new string('a', 64)), 400, "no upload with id");
        var guide = StudioHost.Dream(upload);
        guide["options"]!["guide"] = "/root/.ssh/id_rsa";
        await Refused(guide, 400, "outside");
        await Refused(new JsonObject { ["command"] = "dream" }, 400, "no options record");
        await Refused(new JsonObject { ["command"] = "replay", ["options"] = new JsonObject() }, 400, "not a job");
        var unknown = StudioHost.Dream(upload);
        unknown["options"]!["octavez"] = 3;
        await Refused(unknown, 400, "do not fit");
        Assert.Empty((await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!);
        // An example photo may be named by its path.
        long id = await s.SubmitAsync(StudioHost.Dream(Path.Combine(Paths.RepoRoot, "examples", "coffee.png"), steps: 1, octaves: 1, maxSize: 64));
        Assert.Equal("done", State(await s.WaitAsync(id, StudioHost.Ended)));
    }

    [Fact]
    public async Task HostileRequestsAreRefusedWithOneSentenceAndNothingWritten()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string uploads = Path.Combine(s.Data.Path, "uploads");
        int Stored() => Directory.Exists(uploads) ? Directory.GetFiles(uploads).Length : 0;
        async Task<(int Status, string Error)> Upload(byte[] bytes, string name, bool expectContinue = false)
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(bytes), "file", name } };
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/uploads") { Content = form };
            request.Headers.ExpectContinue = expectContinue;
            var r = await s.Http.SendAsync(request);
            return ((int)r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]!.GetValue<string>());
        }

        // Sent as a careful client does (Expect: 100-continue): the studio answers before the 30 MB travel.
        var big = await Upload(new byte[30 * 1024 * 1024], "big.png", expectContinue: true);
        Assert.Equal(413, big.Status);
        Assert.Contains("above the studio's upload limit of 25 MB", big.Error);

        // A valid PNG header declaring 60000x60000 pixels (a decompression bomb's first bytes).
        byte[] bomb = File.ReadAllBytes(Paths.Sample("coffee.png"));
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bomb.AsSpan(16), 60000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bomb.AsSpan(20), 60000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bomb.AsSpan(29), PngText.Crc(bomb.AsSpan(12, 17))); // IHDR's CRC, so that the header is valid
        var bombResult = await Upload(bomb, "bomb.png");
        Assert.Equal(413, bombResult.Status);
        Assert.Contains("60000×60000", bombResult.Error);

        var text = await Upload("not an image at all"u8.ToArray(), "notes.png");
        Assert.Equal(415, text.Status);
        Assert.Contains("not an image", text.Error);

        byte[] truncated = File.ReadAllBytes(Paths.Sample("coffee.png"))[..2000];
        Assert.Equal(415, (await Upload(truncated, "cut.png")).Status);
        Assert.Equal(0, Stored());

        // Path traversal in file requests.
        foreach (var path in new[] { "/files/..%2f..%2fstudio.db", "/files/..%2F..%2F..%2Fetc%2Fpasswd", "/examples/..%2f..%2fREADME.md", "/api/jobs/1/files/..%2f..%2fstudio.db", "/files/%2e%2e/studio.db" })
        {
            var r = await s.Http.GetAsync(path);
            Assert.True(r.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"{path}: {(int)r.StatusCode}");
            Assert.DoesNotContain("SQLite", await r.Content.ReadAsStringAsync());
        }

        // A cross-site POST: no page token, another origin.
        using var bare = new HttpClient { BaseAddress = s.Server.Address };
        var csrf = await bare.PostAsync("/api/jobs", new StringContent(StudioHost.Dream("x").ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, csrf.StatusCode);
        Assert.Contains("page token", await csrf.Content.ReadAsStringAsync());
        var crossOrigin = new HttpRequestMessage(HttpMethod.Post, "/api/uploads") { Content = new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(Paths.Sample("coffee.png"))), "file", "c.png" } } };
        crossOrigin.Headers.Add("Origin", "http://evil.example");
        crossOrigin.Headers.Add("X-Reverie-Csrf", s.Server.CsrfToken);
        Assert.Equal(HttpStatusCode.Forbidden, (await bare.SendAsync(crossOrigin)).StatusCode);
        Assert.Equal(0, Stored());
        // DNS rebinding: a loopback studio answers only to loopback names.
        var rebound = new HttpRequestMessage(HttpMethod.Get, "/api/session");
        rebound.Headers.Host = "evil.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await bare.SendAsync(rebound)).StatusCode);
        Assert.Empty((await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!);
    }

    [Fact]
    public async Task TheQueueRefusesItsHundredAndFirstJob()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string upload = await s.UploadAsync(Paths.Sample("coffee.png"));
        long first = await s.SubmitAsync(StudioHost.Dream(upload, steps: 1000, octaves: 1, maxSize: 224));
        await s.WaitAsync(first, j => State(j) == "running");
        for (int i = 0; i < 100; i++) await s.SubmitAsync(StudioHost.Dream(upload, steps: 1, octaves: 1, seed: i));
        var r = await s.Http.PostAsync("/api/jobs", new StringContent(StudioHost.Dream(upload).ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
        Assert.Contains("holds 100 jobs", await r.Content.ReadAsStringAsync());
        Assert.Equal(101, (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!.Count);
        foreach (var j in (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs?state=queued"))!)
            Assert.Equal(HttpStatusCode.Accepted, (await s.Http.DeleteAsync($"/api/jobs/{j!["id"]}")).StatusCode);
        await s.Http.DeleteAsync($"/api/jobs/{first}");
        Assert.Equal("cancelled", State(await s.WaitAsync(first, StudioHost.Ended)));
        Assert.Equal(101, (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs?state=cancelled"))!.Count);
    }

    [Fact]
    public async Task AnAccessTokenIsRequiredWhereOneIsSetAndANonLoopbackHostNeedsOne()
    {
        var noToken = StudioHost.SettingsFor(cli.Host, "/tmp/unused") with { Host = "0.0.0.0" };
        var e = Assert.Throws<BadInputException>(noToken.Validate);
        Assert.Contains("needs an access token", e.Message);

        const string token = "0123456789abcdef0123";
        await using var s = await StudioHost.StartAsync(cli.Host, st => st with { AccessToken = token });
        using var bare = new HttpClient { BaseAddress = s.Server.Address };
        var r = await bare.GetAsync("/api/jobs");
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Contains("access token", await r.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, (await bare.GetAsync("/?token=wrong-token-wrong-token")).StatusCode);
        var ok = await bare.GetAsync($"/?token={token}");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Contains(ok.Headers.GetValues("Set-Cookie"), c => c.StartsWith("reverie_access=", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/api/jobs")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/openapi/v1.json")).StatusCode);
    }
}
