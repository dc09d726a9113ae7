using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Reverie.Studio;

/// <summary>The studio's pages: one HTML page with plain JavaScript and CSS, built into the assembly (no front-end build).</summary>
internal static class Pages
{
    static string Resource(string name)
    {
        using var s = typeof(Pages).Assembly.GetManifestResourceStream("studio/" + name) ?? throw new InvalidOperationException($"studio/{name} is not built in");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    public static void Map(WebApplication app, StudioServer studio)
    {
        string index = Resource("index.html").Replace("{{csrf}}", studio.CsrfToken);
        string js = Resource("studio.js"), css = Resource("studio.css");
        app.MapGet("/", (HttpResponse r) =>
        {
            r.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";
            r.Headers.XFrameOptions = "DENY";
            return Results.Content(index, "text/html; charset=utf-8");
        }).ExcludeFromDescription();
        app.MapGet("/studio.js", () => Results.Content(js, "text/javascript; charset=utf-8")).ExcludeFromDescription();
        app.MapGet("/studio.css", () => Results.Content(css, "text/css; charset=utf-8")).ExcludeFromDescription();
        app.MapGet("/api/session", () => new JsonObject { ["csrf"] = studio.CsrfToken })
            .WithSummary("The token that state-changing requests carry in the X-Reverie-Csrf header.");
    }
}
