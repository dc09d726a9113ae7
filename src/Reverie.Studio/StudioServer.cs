using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Reverie.Studio;

/// <summary>
/// <c>reverie studio</c>: a local web app over Reverie's jobs. Pages for dreaming, the job queue and
/// the gallery; an HTTP API (OpenAPI at <c>/openapi/v1.json</c>); jobs queued in SQLite and run one
/// process each.
/// </summary>
public sealed class StudioServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly JobRunner _runner;
    readonly FileStream _lock;

    /// <summary>The settings it runs with.</summary>
    public StudioSettings Settings { get; }
    /// <summary>The token state-changing requests carry (header <c>X-Reverie-Csrf</c>); the pages get it embedded.</summary>
    public string CsrfToken { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
    /// <summary>The job queue.</summary>
    public JobStore Store { get; }

    StudioServer(StudioSettings settings)
    {
        settings.Validate();
        Settings = settings;
        Directory.CreateDirectory(settings.Data);
        // One studio a data folder: a second one must not touch the first one's queue (not even to
        // mark its running jobs interrupted) before it is refused.
        try { _lock = new FileStream(Path.Combine(settings.Data, "studio.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException)
        {
            throw new BadInputException($"The data folder '{BadInputException.Shown(settings.Data, 120)}' is in use by another studio; stop that one, or give this one another --data.");
        }
        Store = new JobStore(Path.Combine(settings.Data, "studio.db"));
        _runner = new JobRunner(settings, Store);
        var uploads = new Uploads(settings);
        var submissions = new Submissions(settings, uploads);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = settings.Data, Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = settings.MaxUploadBytes + 1024 * 1024;
            var address = settings.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(settings.Host);
            k.Listen(address, settings.Port);
        });
        builder.Services.AddOpenApi();
        _app = builder.Build();
        _app.Use(Guard);
        _app.MapOpenApi("/openapi/v1.json"); // the one document; no route that echoes a document name it does not have
        Pages.Map(_app, this);
        Api.Map(_app, settings, Store, _runner, uploads, submissions, new LayerTables(settings));
    }

    /// <summary>Starts a studio: marks jobs a previous run left running as interrupted, starts the workers and listens.</summary>
    public static async Task<StudioServer> StartAsync(StudioSettings settings, CancellationToken cancel = default)
    {
        var s = new StudioServer(settings);
        try
        {
            await s._app.StartAsync(cancel);
        }
        catch
        {
            await s.DisposeAsync(); // a busy port: nothing of the queue was touched
            throw;
        }
        s.Store.MarkRunningInterrupted();
        s._runner.Start();
        return s;
    }

    /// <summary>Every route the studio maps: its HTTP methods and its pattern (for the fuzz harness, which must cover them all).</summary>
    internal IReadOnlyList<(string[] Methods, string Pattern)> Routes =>
        [.. ((Microsoft.AspNetCore.Routing.IEndpointRouteBuilder)_app).DataSources.SelectMany(d => d.Endpoints)
            .OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>()
            .Select(e => (e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods.ToArray() ?? ["GET"], "/" + e.RoutePattern.RawText!.TrimStart('/')))];

    /// <summary>The address it listens on (with the port chosen when <see cref="StudioSettings.Port"/> was 0).</summary>
    public Uri Address
    {
        get
        {
            var server = _app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>();
            var a = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
            return new Uri(a.Replace("[::]", "localhost").Replace("0.0.0.0", "localhost"));
        }
    }

    /// <summary>
    /// Every request: a loopback studio answers only to loopback host names (no DNS rebinding); a
    /// studio with an access token wants it (header, cookie, or <c>?token=</c> once); state-changing
    /// requests need the page's CSRF token and, when the browser names one, the studio's own origin.
    /// Errors become one sentence with their status.
    /// </summary>
    async Task Guard(HttpContext http, RequestDelegate next)
    {
        try
        {
            if (Settings.IsLoopback && !IsLoopbackHost(http.Request.Host.Host))
            {
                await Refuse(http, 400, "This studio answers only to localhost addresses.");
                return;
            }
            if (Settings.AccessToken is { } token)
            {
                string? given = http.Request.Headers["X-Reverie-Access"].FirstOrDefault() ?? http.Request.Cookies["reverie_access"];
                if (http.Request.Query["token"].FirstOrDefault() is { } q && Same(q, token))
                {
                    http.Response.Cookies.Append("reverie_access", token, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict });
                    given = q;
                }
                if (given is null || !Same(given, token))
                {
                    await Refuse(http, 401, "This studio needs its access token: open the address it printed when it started (…/?token=…).");
                    return;
                }
            }
            if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
            {
                string? origin = http.Request.Headers.Origin.FirstOrDefault();
                if (origin is not null && origin != $"{http.Request.Scheme}://{http.Request.Host}")
                {
                    await Refuse(http, 403, "Requests from other sites are refused.");
                    return;
                }
                if (http.Request.Headers["X-Reverie-Csrf"].FirstOrDefault() is not { } csrf || !Same(csrf, CsrfToken))
                {
                    await Refuse(http, 403, "This request lacks the studio's page token (header X-Reverie-Csrf; the studio's pages send it, GET /api/session gives it).");
                    return;
                }
            }
            await next(http);
            // Routing and parameter binding refuse without a body (an unknown address, a wrong method, a
            // missing or malformed parameter): those get their sentence here.
            if (http.Response.StatusCode >= 400 && !http.Response.HasStarted)
                await Refuse(http, http.Response.StatusCode, Unanswered(http.Response.StatusCode));
        }
        catch (RefusedException e) { await Refuse(http, e.Status, e.Message); }
        catch (BadInputException e) { await Refuse(http, 400, e.Message); }
        catch (BadHttpRequestException e) when (e.StatusCode == 413) { await Refuse(http, 413, $"The request is above the studio's upload limit of {Settings.MaxUploadBytes / 1048576.0:0.#} MB."); }
        catch (BadHttpRequestException e) { await Refuse(http, e.StatusCode, "The request is malformed."); }
        catch (InvalidDataException) { await Refuse(http, 400, "The request's form data is malformed."); }
        catch (Exception e) when (!http.Response.HasStarted && e is not OperationCanceledException)
        {
            // Whatever else: a sentence for the client, the details for whoever runs the studio.
            Console.Error.WriteLine($"studio: {http.Request.Method} {BadInputException.Shown(http.Request.Path.Value, 120)} failed: {BadInputException.Shown(e.ToString(), 2000)}");
            await Refuse(http, 500, "The studio could not answer this request (an internal error; the studio's console has the details).");
        }
    }

    /// <summary>The sentence for a refusal that came without one.</summary>
    static string Unanswered(int status) => status switch
    {
        400 => "The request is malformed: a parameter is missing or not of its kind (a job id is a whole number).",
        404 => "There is nothing at this address.",
        405 => "This address does not take that method.",
        411 => "The request needs a Content-Length.",
        413 => "The request is too large.",
        415 => "The request's content type is not one this address takes.",
        _ => $"The request was refused ({status}).",
    };

    static bool Same(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(a), System.Text.Encoding.UTF8.GetBytes(b));

    static bool IsLoopbackHost(string host) =>
        host == "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var a) && IPAddress.IsLoopback(a));

    static async Task Refuse(HttpContext http, int status, string message)
    {
        if (http.Response.HasStarted) return;
        http.Response.Clear();
        http.Response.StatusCode = status;
        await http.Response.WriteAsJsonAsync(new JsonObject { ["error"] = message });
    }

    /// <summary>Stops listening and the workers; running jobs stop, save what they have, and show as interrupted.</summary>
    public async ValueTask DisposeAsync()
    {
        try { await _app.StopAsync(); } catch (InvalidOperationException) { } // it never started
        _runner.Dispose();
        await _app.DisposeAsync();
        _lock.Dispose();
    }
}
