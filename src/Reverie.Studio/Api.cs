using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Reverie.Models.Registry;
using Reverie.Recipes;

namespace Reverie.Studio;

/// <summary>The studio's HTTP API (see the OpenAPI document at <c>/openapi/v1.json</c>).</summary>
internal static class Api
{
    /// <summary>A job as the API shows it.</summary>
    public static JsonObject JobJson(StudioJob j)
    {
        string? model = null;
        try { model = JsonNode.Parse(j.Recipe)?["options"]?["model"]?.GetValue<string>(); } catch (System.Text.Json.JsonException) { }
        return new JsonObject
        {
            ["id"] = j.Id,
            ["kind"] = j.Kind,
            ["state"] = j.State.ToString().ToLowerInvariant(),
            ["model"] = model,
            ["created"] = j.Created,
            ["started"] = j.Started,
            ["finished"] = j.Finished,
            ["progress"] = j.Progress,
            ["stage"] = j.Stage,
            ["summary"] = j.Summary,
            ["error"] = j.Error,
            ["runs"] = j.Runs,
            ["files"] = new JsonArray([.. j.Files.Select(f => (JsonNode?)$"/api/jobs/{j.Id}/files/{Uri.EscapeDataString(f)}")]),
            ["preview"] = j.Previews > 0 ? $"/api/jobs/{j.Id}/preview?v={j.Previews}" : null,
        };
    }

    /// <summary>The largest recipe a request may carry: 1 MB, counted as the bytes arrive.</summary>
    const int MaxRecipeBytes = 1_000_000;

    /// <summary>
    /// The real path of a file the studio serves from <paramref name="root"/>: a regular file whose
    /// real place (links resolved) lies inside the root's real place, or null. A link planted in the
    /// data folder serves nothing.
    /// </summary>
    static string? Served(string root, string path)
    {
        try
        {
            using (Reverie.Imaging.InputFile.Confine([root]))
                return Reverie.Imaging.InputFile.Check(path, "file", long.MaxValue);
        }
        catch (BadInputException) { return null; }
    }

    /// <summary>Removes a job's folder; when the folder is a link, only the link (never the files it leads to).</summary>
    static void DeleteJobDir(string dir)
    {
        var info = new DirectoryInfo(dir);
        if (info.LinkTarget is not null) { info.Delete(); return; }
        if (!info.Exists) return;
        // Links inside it are removed as links: Directory.Delete does not follow them.
        try { info.Delete(true); } catch (DirectoryNotFoundException) { }
    }

    static IResult Error(int status, string message) => Results.Json(new JsonObject { ["error"] = message }, statusCode: status);

    public static void Map(WebApplication app, StudioSettings settings, JobStore store, JobRunner runner, Uploads uploads, Submissions submissions, LayerTables layers)
    {
        var api = app.MapGroup("/api");

        api.MapPost("/uploads", async (HttpRequest request) =>
        {
            if (request.ContentLength > settings.MaxUploadBytes + 64 * 1024)
                return Error(413, $"The upload is {request.ContentLength / 1048576.0:0.0} MB, above the studio's upload limit of {settings.MaxUploadBytes / 1048576.0:0.#} MB.");
            var (file, refused) = await FormFile(request, "image");
            if (file is null) return refused!;
            if (file.Length > settings.MaxUploadBytes)
                return Error(413, $"'{BadInputException.Shown(file.FileName)}' is {file.Length / 1048576.0:0.0} MB, above the studio's upload limit of {settings.MaxUploadBytes / 1048576.0:0.#} MB.");
            using var ms = new MemoryStream();
            await file.CopyToAsync(ms);
            var (id, w, h) = uploads.Store(ms.ToArray(), file.FileName);
            return Results.Json(new JsonObject { ["id"] = id, ["width"] = w, ["height"] = h, ["url"] = $"/files/{id}" }, statusCode: 201);
        }).WithSummary("Stores an image (multipart field 'file'); returns its id, to use in a recipe in place of a path.").DisableAntiforgery();

        app.MapGet("/files/{id}", (string id) =>
            uploads.PathOf(id) is { } p && Served(uploads.Dir, p) is { } real ? Results.File(real, ContentType(p)) : Error(404, "There is no upload with that id."))
            .WithSummary("An uploaded image, by id.");

        api.MapGet("/examples", () => new JsonArray([.. Examples(settings).Select(f => (JsonNode?)new JsonObject
        {
            ["name"] = Path.GetFileName(f),
            ["path"] = f,
            ["url"] = $"/examples/{Uri.EscapeDataString(Path.GetFileName(f))}",
        })])).WithSummary("The example photos; their paths may be used in recipes.");

        app.MapGet("/examples/{name}", (string name) =>
            Examples(settings).FirstOrDefault(f => Path.GetFileName(f) == name) is { } p ? Results.File(p, ContentType(p)) : Error(404, "There is no example of that name."))
            .WithSummary("An example photo.");

        api.MapPost("/jobs", async (HttpRequest request) =>
        {
            // The limit holds for the bytes that arrive, whatever Content-Length says (a chunked body has none).
            if (request.ContentLength > MaxRecipeBytes) return Error(413, "A recipe is at most 1 MB.");
            var received = new MemoryStream();
            var chunk = new byte[1 << 14];
            for (int n; (n = await request.Body.ReadAsync(chunk)) > 0;)
            {
                if (received.Length + n > MaxRecipeBytes) return Error(413, "A recipe is at most 1 MB.");
                received.Write(chunk, 0, n);
            }
            string body = System.Text.Encoding.UTF8.GetString(received.GetBuffer(), 0, (int)received.Length);
            var (kind, recipe) = submissions.Check(body);
            if (store.Add(kind, recipe, settings.MaxQueued) is not { } id)
                return Error(429, $"The queue holds {settings.MaxQueued} jobs, its limit; wait for some to finish or cancel some.");
            runner.Wake();
            return Results.Json(new JsonObject { ["id"] = id, ["url"] = $"/api/jobs/{id}" }, statusCode: 201);
        }).WithSummary("Queues a job from a recipe (the JSON the CLI writes beside its outputs; upload ids in place of paths).");

        api.MapGet("/jobs", (string? state, string? kind) =>
        {
            StudioJobState? s = null;
            if (state is not null)
                s = Enum.TryParse<StudioJobState>(state, true, out var v) ? v : throw new BadInputException($"'{BadInputException.Shown(state)}' is not a job state (queued, running, done, failed, cancelled, interrupted).");
            return new JsonArray([.. store.List(s, kind).Select(j => (JsonNode?)JobJson(j))]);
        }).WithSummary("Jobs, newest first; filter by state and kind.");

        api.MapGet("/jobs/{id:long}", (long id) => store.Get(id) is { } j ? Results.Json(JobJson(j)) : NoJob())
            .WithSummary("One job: its state (queued, running, done, failed, cancelled, interrupted), progress and files.");

        api.MapDelete("/jobs/{id:long}", (long id) =>
        {
            if (store.Get(id) is not { } j) return NoJob();
            if (!j.Ended) return runner.Cancel(id) ? Results.Json(new JsonObject { ["id"] = id, ["cancelling"] = true }, statusCode: 202) : Error(409, "The job ended meanwhile; delete it again to remove it.");
            if (!store.Delete(id)) return Error(409, "The job is running again; cancel it first.");
            DeleteJobDir(runner.JobDir(id));
            return Results.NoContent();
        }).WithSummary("Cancels a queued or running job (202); removes an ended one with its files (204).");

        api.MapPost("/jobs/{id:long}/resume", (long id) =>
        {
            if (store.Get(id) is not { } j) return NoJob();
            if (!store.Requeue(id)) return Error(409, $"Only an interrupted, failed or cancelled job can be resumed; this one is {j.State.ToString().ToLowerInvariant()}.");
            runner.Wake();
            return Results.Json(new JsonObject { ["id"] = id }, statusCode: 202);
        }).WithSummary("Queues an interrupted, failed or cancelled job again; it runs its recipe from the start.");

        api.MapPost("/jobs/{id:long}/rerun", (long id) =>
        {
            if (store.Get(id) is not { } j) return NoJob();
            var (kind, recipe) = submissions.Check(j.Recipe);
            if (store.Add(kind, recipe, settings.MaxQueued) is not { } newId)
                return Error(429, $"The queue holds {settings.MaxQueued} jobs, its limit; wait for some to finish or cancel some.");
            runner.Wake();
            return Results.Json(new JsonObject { ["id"] = newId, ["url"] = $"/api/jobs/{newId}" }, statusCode: 201);
        }).WithSummary("Queues a new job with the same recipe.");

        api.MapGet("/jobs/{id:long}/events", async (long id, HttpContext http) =>
        {
            if (runner.Follow(id) is not { } events) { await NoJob().ExecuteAsync(http); return; }
            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers["X-Accel-Buffering"] = "no";
            var cancel = http.RequestAborted;
            try
            {
                await http.Response.WriteAsync(": following job " + id + "\n\n", cancel);
                await http.Response.Body.FlushAsync(cancel);
                while (await events.WaitToReadAsync(cancel))
                    while (events.TryRead(out var e))
                    {
                        await http.Response.WriteAsync($"data: {e}\n\n", cancel);
                        await http.Response.Body.FlushAsync(cancel);
                    }
                await http.Response.WriteAsync("event: end\ndata: {}\n\n", cancel);
            }
            catch (OperationCanceledException) { }
            finally { runner.Unfollow(id, events); }
        }).WithSummary("Server-sent events: the job's state, then progress (stage, step, loss terms, preview number, ETA) until it ends.");

        api.MapGet("/jobs/{id:long}/preview", (long id) =>
            store.Get(id) is not null && Served(runner.JobDir(id), Path.Combine(runner.JobDir(id), "preview.jpg")) is { } real
                ? Results.File(real, "image/jpeg")
                : Error(404, "That job has no preview yet."))
            .WithSummary("The job's latest preview (JPEG).");

        api.MapGet("/jobs/{id:long}/files/{name}", (long id, string name) =>
            store.Get(id) is { } j && j.Files.Contains(name) && Served(runner.JobDir(id), Path.Combine(runner.JobDir(id), name)) is { } real
                ? Results.File(real, ContentType(name), name)
                : Error(404, "That job has no such file."))
            .WithSummary("A file the job wrote.");

        api.MapGet("/jobs/{id:long}/recipe", (long id) =>
        {
            if (store.Get(id) is not { } j) return NoJob();
            if (j.Files.FirstOrDefault() is { } main && Served(runner.JobDir(id), Path.Combine(runner.JobDir(id), main)) is { } real)
                return Results.Text(Recipe.Load(real).ToJson(), "application/json");
            return Results.Text(j.Recipe, "application/json");
        }).WithSummary("The job's recipe: read from its output PNG once it has one, else the recipe it was given.");

        api.MapPost("/recipes/read", async (HttpRequest request) =>
        {
            if (request.ContentLength > settings.MaxUploadBytes + 64 * 1024) return Error(413, $"The file is above the studio's upload limit of {settings.MaxUploadBytes / 1048576.0:0.#} MB.");
            var (file, refused) = await FormFile(request, "PNG");
            if (file is null) return refused!;
            using var ms = new MemoryStream();
            await file.CopyToAsync(ms);
            if (!PngText.Read(ms.ToArray()).TryGetValue(Recipe.Keyword, out var json))
                return Error(422, $"'{BadInputException.Shown(file.FileName)}' carries no Reverie recipe.");
            return Results.Text(Recipe.FromJson(json, $"'{BadInputException.Shown(file.FileName)}'").ToJson(), "application/json");
        }).WithSummary("Reads the recipe a Reverie PNG carries (nothing is stored).").DisableAntiforgery();

        api.MapGet("/gallery", (string? kind, string? model) =>
            new JsonArray([.. store.List(StudioJobState.Done, kind)
                .Select(JobJson)
                .Where(j => model is null || j["model"]?.GetValue<string>() == model)
                .Select(j => (JsonNode?)j)]))
            .WithSummary("Finished jobs with their outputs; filter by command and model.");

        api.MapGet("/models", () =>
        {
            var reg = Registry(settings);
            return new JsonArray([.. reg.Entries.Select(e => (JsonNode?)new JsonObject
            {
                ["name"] = e.Name,
                ["description"] = e.Description,
                ["status"] = reg.Status(e).ToString().ToLowerInvariant(),
            })]);
        }).WithSummary("The models the registry knows and whether each is ready.");

        api.MapGet("/attack-methods", () => new JsonArray([.. Reverie.Adversarial.AttackMethods.Entries.Select(e => (JsonNode?)new JsonObject
        {
            ["value"] = System.Text.Json.JsonSerializer.SerializeToNode(e.Method, Recipe.JsonOptions),
            ["name"] = e.Name,
            ["title"] = e.Title,
            ["steps"] = e.Steps,
            ["eps"] = e.Eps,
            ["optionalEps"] = e.OptionalEps,
            ["l2"] = new Reverie.Adversarial.AttackOptions { Method = e.Method }.L2,
            ["blackBox"] = Reverie.Adversarial.AttackMethods.BlackBox(e.Method),
        })])).WithSummary("The attack methods: the value for an attack job's options, a title, the default steps (queries for a black box), whether eps only caps the change (0: none) and whether it is an L2 radius.");

        // The microscope: every channel's visualization, made by atlas jobs with the channel cache on
        // (POST /api/jobs with {"command":"atlas","options":{…,"cache":true}}) and read here from that cache.
        api.MapGet("/microscope/tiles", (string model, string layer, int? size, int? steps, int? seed) =>
        {
            string dir = MicroscopeDir(settings, model, layer, size, steps);
            var v = Tiles(size, steps);
            var cached = Directory.Exists(dir)
                ? Directory.EnumerateFiles(dir, $"*-s{v.Size}-n{v.Steps}-seed{seed ?? 0}.png").Select(f => Path.GetFileName(f).Split('-')[0]).Where(c => c.All(char.IsAsciiDigit) && c.Length is > 0 and < 7).Select(int.Parse).Order()
                : Enumerable.Empty<int>();
            return new JsonObject { ["model"] = model, ["layer"] = layer, ["size"] = v.Size, ["steps"] = v.Steps, ["cached"] = new JsonArray([.. cached.Select(c => (JsonNode?)c)]) };
        }).WithSummary("The channels of a layer whose visualization is in the channel cache, for the given settings (size 128, steps 128 by default).");

        api.MapGet("/microscope/tile", (string model, string layer, int channel, int? size, int? steps, int? seed) =>
        {
            string file = Reverie.Visualization.ChannelCache.File(MicroscopeDir(settings, model, layer, size, steps), channel, Tiles(size, steps), seed ?? 0);
            return channel >= 0 && File.Exists(file) ? Results.File(file, "image/png") : Error(404, $"Channel {channel} of that layer has no visualization yet; render it first.");
        }).WithSummary("One channel's visualization from the channel cache.");

        api.MapGet("/models/{name}/layers", async (string name, CancellationToken cancel) =>
            Results.Text(await layers.GetAsync(name, cancel), "application/json"))
            .WithSummary("A model's layer table: name, aliases, op, shape, channels.");
    }

    /// <summary>
    /// The one file of a multipart upload (field 'file'), or the refusal: a body that is not
    /// multipart, a malformed or truncated one, a form without the field.
    /// </summary>
    static async Task<(IFormFile? File, IResult? Refused)> FormFile(HttpRequest request, string what)
    {
        if (!request.HasFormContentType) return (null, Error(400, $"Send the {what} as multipart/form-data in a field named 'file'."));
        IFormCollection form;
        try { form = await request.ReadFormAsync(); }
        catch (Exception e) when (e is IOException or InvalidOperationException or InvalidDataException)
        {
            return (null, Error(400, $"The upload's multipart form data is malformed; send the {what} in a multipart field named 'file'."));
        }
        return form.Files.GetFile("file") is { } file ? (file, null) : (null, Error(400, $"Send the {what} in a multipart field named 'file'."));
    }

    static IResult NoJob() => Error(404, "There is no job with that id.");

    static Reverie.Visualization.VisualizeOptions Tiles(int? size, int? steps)
    {
        if (size is < 16 or > 1024 || steps is < 1 or > 10000) throw new BadInputException("size must be from 16 to 1024 and steps from 1 to 10000.");
        return new() { Size = size ?? 128, Steps = steps ?? 128 };
    }

    static string MicroscopeDir(StudioSettings s, string model, string layer, int? size, int? steps)
    {
        var reg = Registry(s);
        if (!reg.Contains(model)) throw new RefusedException(404, $"There is no model named '{BadInputException.Shown(model)}' (see /api/models).");
        return Reverie.Visualization.ChannelCache.Dir(reg, model, layer, Tiles(size, steps), Reverie.Jobs.Precision.Fp32);
    }

    /// <summary>The model registry the jobs see (the studio's environment for them, else its own).</summary>
    public static ModelRegistry Registry(StudioSettings s) =>
        new(s.Environment.GetValueOrDefault("REVERIE_CACHE"), s.Environment.GetValueOrDefault("REVERIE_REGISTRY"));

    static IEnumerable<string> Examples(StudioSettings s) =>
        s.Examples is { } dir && Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir).Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" or ".webp").Select(Path.GetFullPath).Order()
            : [];

    static string ContentType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".webp" => "image/webp",
        ".gif" => "image/gif",
        ".bmp" => "image/bmp",
        ".json" => "application/json",
        ".mp4" => "video/mp4",
        _ => "application/octet-stream",
    };
}

/// <summary>
/// Layer tables, read once per model by the CLI (<c>reverie models layers NAME --json</c>) and kept
/// in the data folder: the studio process itself never runs libtorch.
/// </summary>
internal sealed class LayerTables(StudioSettings settings)
{
    readonly SemaphoreSlim _one = new(1);

    public async Task<string> GetAsync(string name, CancellationToken cancel)
    {
        var reg = Api.Registry(settings);
        if (!reg.Contains(name)) throw new RefusedException(404, $"There is no model named '{BadInputException.Shown(name)}' (see /api/models).");
        var entry = reg.Get(name);
        if (reg.Status(entry) == ModelStatus.Missing) throw new RefusedException(409, $"The model '{name}' is not installed; run 'reverie models pull {name}'.");
        string dir = Path.Combine(settings.Data, "cache");
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, $"layers-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name + "\n" + reg.WeightsPath(entry))))[..16]}.json");
        await _one.WaitAsync(cancel);
        try
        {
            if (File.Exists(file)) return await File.ReadAllTextAsync(file, cancel);
            var psi = new ProcessStartInfo(settings.Reverie[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var a in settings.Reverie.Skip(1).Concat(["models", "layers", name, "--json"])) psi.ArgumentList.Add(a);
            foreach (var (k, v) in settings.Environment) psi.Environment[k] = v;
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var output = p.StandardOutput.ReadToEndAsync(cancel);
            var error = p.StandardError.ReadToEndAsync(cancel);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(TimeSpan.FromMinutes(2));
            try { await p.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) { p.Kill(true); throw new RefusedException(504, $"Reading the layers of '{name}' took over 2 minutes."); }
            if (p.ExitCode != 0)
                throw new RefusedException(500, (await error).Split('\n').FirstOrDefault(l => l.StartsWith("error: "))?["error: ".Length..] ?? $"Reading the layers of '{name}' failed.");
            string json = (await output).Trim();
            Reverie.Imaging.AtomicFile.WriteAllText(file, json);
            return json;
        }
        finally { _one.Release(); }
    }
}
