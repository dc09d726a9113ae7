using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Studio;

/// <summary>Issue 36's probe, defects 1 and 2, through the studio's API with its jobs run by the real CLI.</summary>
public class StudioTrustTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    static JsonObject Direction(string file) => new()
    {
        ["command"] = "visualize",
        ["options"] = new JsonObject
        {
            ["model"] = "textures", ["objective"] = $"direction:conv6@{file}",
            ["visualize"] = new JsonObject { ["steps"] = 2, ["size"] = 32 },
        },
    };

    /// <summary>The job's error once it has ended (it must fail), or the refusal at submit.</summary>
    static async Task<string> Error(StudioHost s, JsonObject recipe)
    {
        var r = await s.Http.PostAsync("/api/jobs", new StringContent(recipe.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        var body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        if ((int)r.StatusCode == 400) return body["error"]!.GetValue<string>();
        Assert.Equal(201, (int)r.StatusCode);
        var job = await s.WaitAsync(body["id"]!.GetValue<long>(), StudioHost.Ended, TimeSpan.FromMinutes(2));
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        return job["error"]!.GetValue<string>();
    }

    [Fact]
    public async Task P01_AnObjectivesFileOutsideTheDataFolderIsNeitherReadNorProbed()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        var errors = new List<string>();
        foreach (var file in new[] { "/etc/passwd", "/proc/self/environ", "/etc/no-such-file", "../../../../etc/passwd" })
            errors.Add(await Error(s, Direction(file)));
        Assert.All(errors, e => Assert.Matches("lies outside the studio's data folder|climbs out of its folder", e));
        Assert.All(errors, e => Assert.DoesNotContain("root:", e));
        Assert.All(errors, e => Assert.DoesNotContain("PATH=", e));
        // A missing file outside gets the same answer as an existing one: nothing to probe.
        Assert.All(errors, e => Assert.DoesNotContain("does not exist", e));
    }

    [Fact]
    public async Task P02_AJobThatNamesAPipeFailsAndTheQueueGoesOn()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        // The job's own standard input, which the studio keeps open: a read of it would never end.
        var stalled = Direction("/proc/self/fd/0");
        var r = await s.Http.PostAsync("/api/jobs", new StringContent(stalled.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        long first = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<long>();
        string photo = await s.UploadAsync(Paths.Sample("coffee.png"));
        long next = await s.SubmitAsync(StudioHost.Dream(photo, steps: 1, octaves: 1, maxSize: 48, model: "textures", layer: "conv6"));
        var j = await s.WaitAsync(first, StudioHost.Ended, TimeSpan.FromMinutes(2));
        Assert.Equal("failed", j["state"]!.GetValue<string>());
        Assert.Matches("outside the studio's data folder|not a regular file", j["error"]!.GetValue<string>());
        Assert.Equal("done", (await s.WaitAsync(next, StudioHost.Ended, TimeSpan.FromMinutes(2)))["state"]!.GetValue<string>());
    }
}

/// <summary>Issue 36, defect 11: the recipe limit holds for what arrives, and job errors are cut.</summary>
public class StudioLimitTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    [Fact]
    public async Task P11_AChunkedRecipeIsHeldToTheLimitAsItArrives()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string big = "{\"command\":\"dream\",\"options\":{\"input\":\"" + new string('a', 20_000_000) + "\"}}";
        for (int i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/jobs") { Content = new StringContent(big, System.Text.Encoding.UTF8, "application/json") };
            request.Content.Headers.ContentLength = null;
            request.Headers.TransferEncodingChunked = true;
            int status;
            try { status = (int)(await s.Http.SendAsync(request)).StatusCode; }
            catch (HttpRequestException) { status = 413; } // the server may close the connection once it has answered
            Assert.Equal(413, status);
        }
        var jobs = (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!;
        Assert.Empty(jobs);
        Assert.True((await s.Http.GetStringAsync("/api/jobs")).Length < 100);
    }

    [Fact]
    public async Task P14_ANulInAPathAndABrokenMultipartGetA400WithASentence()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        var nul = StudioHost.Dream("photo\u0000.png");
        var r = await s.Http.PostAsync("/api/jobs", new StringContent(nul.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        string body = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode == 400, body);
        Assert.Contains("control character", JsonNode.Parse(body)!["error"]!.GetValue<string>());
        foreach (var broken in new[] { "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nabc", "garbage", "--xyz--" })
        {
            var content = new StringContent(broken);
            content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("multipart/form-data; boundary=xyz");
            var u = await s.Http.PostAsync("/api/uploads", content);
            string ub = await u.Content.ReadAsStringAsync();
            Assert.True((int)u.StatusCode == 400, $"{(int)u.StatusCode}: {ub}");
            Assert.False(string.IsNullOrEmpty(JsonNode.Parse(ub)!["error"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task P18_LinksPlantedInTheDataFolderServeAndDeleteNothingOutsideIt()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string photo = await s.UploadAsync(Paths.Sample("coffee.png"));
        // An upload name that is a link to /etc/passwd.
        string id = new string('a', 64);
        File.CreateSymbolicLink(Path.Combine(s.Data.Path, "uploads", id + ".png"), "/etc/passwd");
        var served = await s.Http.GetAsync($"/files/{id}");
        Assert.Equal(404, (int)served.StatusCode);
        Assert.DoesNotContain("root:", await served.Content.ReadAsStringAsync());
        // A recipe naming the planted upload is refused: its real place is outside.
        var r = await s.Http.PostAsync("/api/jobs", new StringContent(StudioHost.Dream(id).ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)r.StatusCode);
        // A finished job whose folder has been replaced by a link: deleting the job removes the link, not what it leads to.
        long job = await s.SubmitAsync(StudioHost.Dream(photo, steps: 1, octaves: 1, maxSize: 48, model: "textures", layer: "conv6"));
        Assert.Equal("done", (await s.WaitAsync(job, StudioHost.Ended))["state"]!.GetValue<string>());
        using var elsewhere = new TempDir();
        File.WriteAllText(elsewhere.File("keep.txt"), "the user's");
        string dir = Path.Combine(s.Data.Path, "jobs", job.ToString());
        Directory.Delete(dir, true);
        Directory.CreateSymbolicLink(dir, elsewhere.Path);
        Assert.Equal(204, (int)(await s.Http.DeleteAsync($"/api/jobs/{job}")).StatusCode);
        Assert.True(File.Exists(elsewhere.File("keep.txt")));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task P12_JobsWhoseProductIsNotOneImageAreRefusedAtSubmit()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        string photo = await s.UploadAsync(Paths.Sample("coffee.png"));
        var zoom = StudioHost.Dream(photo, model: "textures", layer: "conv6");
        zoom["options"]!["zoom"] = 3;
        var recipes = new[]
        {
            zoom,
            new JsonObject { ["command"] = "attack data", ["options"] = new JsonObject { ["model"] = "fashion" } },
            new JsonObject { ["command"] = "attack benchmark", ["options"] = new JsonObject { ["model"] = "fashion" } },
        };
        foreach (var recipe in recipes)
        {
            var r = await s.Http.PostAsync("/api/jobs", new StringContent(recipe.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
            string body = await r.Content.ReadAsStringAsync();
            Assert.True((int)r.StatusCode == 400, body);
            Assert.Contains("run it from the command line", body);
        }
        Assert.Empty((await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!);
    }

    [Fact]
    public async Task P20_ManyLargeUploadsAtOnceAreDecodedAFewAtATime()
    {
        // A 36 MP PNG of one colour: about 100 kB to send, 144 MB decoded. The probe sent 40 at once and
        // the studio grew by 1.24 GB; decoding is now one upload a core at a time.
        const int side = 6000, uploads = 40;
        byte[] png;
        using (var bitmap = new SkiaSharp.SKBitmap(side, side))
        {
            bitmap.Erase(new SkiaSharp.SKColor(70, 130, 180));
            using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 1);
            png = data.ToArray();
        }
        await using var s = await StudioHost.StartAsync(cli.Host);
        GC.Collect();
        File.WriteAllText("/proc/self/clear_refs", "5"); // the peak (VmHWM) starts again from here
        long before = ProcStatus.Bytes("self", "VmRSS");
        var sent = Enumerable.Range(0, uploads).Select(async k =>
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(png), "file", $"big{k}.png" } };
            using var r = await s.Http.PostAsync("/api/uploads", form);
            return (int)r.StatusCode;
        }).ToList();
        var codes = await Task.WhenAll(sent);
        long grew = ProcStatus.Bytes("self", "VmHWM") - before;
        long decoded = 4L * side * side;
        Assert.All(codes, c => Assert.Equal(201, c));
        // A decode a core at a time, with room for the buffers around them; all 40 at once would be 5.8 GB.
        long bound = (Environment.ProcessorCount + 3) * decoded;
        Assert.True(grew < bound, $"{uploads} uploads of {png.Length / 1024} kB ({decoded >> 20} MB decoded each) grew the studio by {grew >> 20} MB; the bound is {bound >> 20} MB");
    }
}

/// <summary>Issue 36, defect 2's second half: a job that does not stop when told is killed after a grace period.</summary>
public class StudioKillTests(GoogLeNetCli cli) : IClassFixture<GoogLeNetCli>
{
    /// <summary>
    /// A studio whose "reverie" is a stand-in for a job stuck where no signal reaches it (a process
    /// that ignores SIGTERM), with one such job running.
    /// </summary>
    async Task<(StudioHost Studio, long Id)> StuckJob(TimeSpan grace)
    {
        var s = await StudioHost.StartAsync(cli.Host, settings => settings with
        {
            Reverie = ["bash", "-c", "trap '' TERM; while true; do sleep 0.2; done", "stuck"],
            CancelGrace = grace,
        });
        string photo = await s.UploadAsync(Paths.Sample("coffee.png"));
        long id = await s.SubmitAsync(StudioHost.Dream(photo, steps: 1, octaves: 1, maxSize: 48, model: "textures", layer: "conv6"));
        await s.WaitAsync(id, j => j["state"]!.GetValue<string>() == "running", TimeSpan.FromSeconds(60));
        return (s, id);
    }

    [Fact]
    public async Task P02_ACancelledJobThatIgnoresTheSignalIsKilledAfterTheGrace()
    {
        var (s, id) = await StuckJob(TimeSpan.FromSeconds(2));
        await using var _ = s;
        Assert.Equal(202, (int)(await s.Http.DeleteAsync($"/api/jobs/{id}")).StatusCode);
        var ended = await s.WaitAsync(id, StudioHost.Ended, TimeSpan.FromSeconds(60));
        Assert.Equal("cancelled", ended["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task P09_ASecondStudioRefusedLeavesTheFirstOnesRunningJobAlone()
    {
        var (first, id) = await StuckJob(TimeSpan.FromSeconds(1));
        await using var _ = first;
        // The same data folder (on another port), then the same port (with another data folder): both refused.
        var sameData = await Assert.ThrowsAsync<BadInputException>(() => StudioHost.StartAsync(cli.Host, data: first.Data));
        Assert.Contains("in use by another studio", sameData.Message);
        using var other = new TempDir();
        await Assert.ThrowsAnyAsync<IOException>(() => StudioHost.StartAsync(cli.Host, settings => settings with { Port = first.Server.Address.Port }, data: other));
        Assert.Equal("running", (await first.JobAsync(id))["state"]!.GetValue<string>());
        Assert.Equal(202, (int)(await first.Http.DeleteAsync($"/api/jobs/{id}")).StatusCode);
        Assert.Equal("cancelled", (await first.WaitAsync(id, StudioHost.Ended, TimeSpan.FromSeconds(60)))["state"]!.GetValue<string>());
    }
}
