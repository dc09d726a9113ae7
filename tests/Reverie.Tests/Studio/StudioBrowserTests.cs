using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Studio;

/// <summary>
/// The studio end to end in a real browser: Debian's chromium, driven by Debian's chromium-driver
/// through Selenium (both installed by scripts/install-test-deps.sh). Screenshots go to
/// TestResults/studio/; the README's come from this test.
/// </summary>
public class StudioBrowserTests(GoogLeNetCli cli, ITestOutputHelper output) : IClassFixture<GoogLeNetCli>
{
    static ChromeDriver Browser()
    {
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1360,940", "--lang=en-US");
        return new ChromeDriver(service, options, TimeSpan.FromMinutes(2));
    }

    static string Shots
    {
        get
        {
            string dir = Path.Combine(Paths.RepoRoot, "TestResults", "studio");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }

    [Fact]
    [Trait("Category", "Slow")]
    public async Task UploadDreamWatchPreviewsCancelFindInGalleryAndRerun()
    {
        await using var s = await StudioHost.StartAsync(cli.Host);
        using var driver = Browser();
        // Polled every 50 ms, so a generous bound costs a passing run nothing: with two other processes keeping both
        // cores busy (issue 16's loaded run, 2026-12-05) the microscope's 64 renders alone took more than 3 minutes.
        var wait = new WebDriverWait(driver, TimeSpan.FromMinutes(12)) { PollingInterval = TimeSpan.FromMilliseconds(50) };
        driver.Navigate().GoToUrl(s.Server.Address);
        Assert.Equal("Reverie studio", driver.Title);

        // Upload a photo; the layer picker fills from the model's layer table.
        driver.FindElement(By.Id("photo-file")).SendKeys(Paths.Sample("chelsea.png"));
        wait.Until(d => d.FindElement(By.Id("photo")).GetDomProperty("value") is { Length: 64 });
        wait.Until(d => d.FindElements(By.CssSelector("#layer option")).Count > 10);
        driver.FindElement(By.CssSelector("#layer option[value='inception_4c/output']")).Click();
        void Set(string id, string value)
        {
            var e = driver.FindElement(By.Id(id));
            e.Clear();
            e.SendKeys(value);
        }
        Set("octaves", "3");
        Set("steps", "10");
        Set("max-size", "320");
        driver.FindElement(By.Id("run")).Click();

        // At least three preview updates arrive while it runs.
        wait.Until(d => int.Parse(d.FindElement(By.Id("preview")).GetDomAttribute("data-updates")!) >= 3);
        int seenRunning = driver.FindElement(By.Id("state")).Text == "running" ? 1 : 0;
        driver.ExecuteScript("window.scrollTo(0, 0)");
        driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "dream-mid-run.png"));
        wait.Until(d => d.FindElement(By.Id("state")).Text.StartsWith("done", StringComparison.Ordinal));
        Assert.Contains("\"command\": \"dream\"", driver.FindElement(By.Id("recipe")).GetDomProperty("textContent"));
        Assert.True(driver.FindElement(By.Id("download")).Displayed);
        output.WriteLine($"preview updates seen: {driver.FindElement(By.Id("preview")).GetDomAttribute("data-updates")}, running seen mid-run: {seenRunning}");
        long first = (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!.Single()!["id"]!.GetValue<long>();

        // A second, long job: cancelled from the page while it runs.
        Set("steps", "400");
        driver.FindElement(By.Id("run")).Click();
        wait.Until(d => d.FindElement(By.Id("state")).Text == "running" && d.FindElement(By.Id("stage")).Text.Length > 0);
        driver.FindElement(By.Id("cancel")).Click();
        wait.Until(d => d.FindElement(By.Id("state")).Text.StartsWith("cancelled", StringComparison.Ordinal));

        // The gallery shows the first result with its recipe; re-running it from there completes.
        driver.FindElement(By.Id("nav-gallery")).Click();
        wait.Until(d => d.FindElements(By.Id($"card-{first}")).Count == 1);
        driver.FindElement(By.Id($"card-{first}")).Click();
        wait.Until(d => d.FindElement(By.Id("detail-recipe")).Text.Contains("inception_4c/output"));
        driver.ExecuteScript("window.scrollTo(0, 0)");
        driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "gallery.png"));
        driver.FindElement(By.Id("detail-rerun")).Click();
        wait.Until(d => d.FindElement(By.Id("page-dream")).Displayed);
        wait.Until(d => d.FindElement(By.Id("state")).Text.StartsWith("done", StringComparison.Ordinal));
        driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "dream-done.png"));

        // The microscope: render a layer's channels through the queue, open one, dream with it.
        driver.FindElement(By.Id("nav-microscope")).Click();
        wait.Until(d => d.FindElements(By.CssSelector("#ms-layer option[value='inception_4c/output']")).Count == 1);
        driver.FindElement(By.CssSelector("#ms-layer option[value='inception_4c/output']")).Click();
        Set("ms-size", "96");
        Set("ms-steps", "48");
        driver.FindElement(By.Id("ms-page")).Click(); // leaves the steps field, so that its change applies
        wait.Until(d => d.FindElements(By.CssSelector("#ms-grid .tile.missing")).Count == 64);
        driver.FindElement(By.Id("ms-render")).Click();
        wait.Until(d => d.FindElements(By.CssSelector("#ms-grid .tile img")).Count == 64);
        driver.ExecuteScript("window.scrollTo(0, 0)");
        driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "microscope.png"));
        driver.FindElement(By.Id("ms-tile-5")).Click();
        try { wait.Until(d => d.FindElement(By.Id("ms-channel-title")).GetDomProperty("textContent")!.EndsWith("channel 5", StringComparison.Ordinal)); }
        catch (WebDriverTimeoutException)
        {
            driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "failed.png"));
            throw new Xunit.Sdk.XunitException($"channel title: '{driver.FindElement(By.Id("ms-channel-title")).GetDomProperty("textContent")}', hidden: {driver.FindElement(By.Id("ms-channel")).GetDomProperty("hidden")}");
        }
        driver.FindElement(By.Id("ms-dream")).Click();
        wait.Until(d => d.FindElement(By.Id("page-dream")).Displayed && d.FindElement(By.Id("channels")).GetDomProperty("value") == "5");
        Assert.Equal("inception_4c/output", driver.FindElement(By.Id("layer")).GetDomProperty("value"));
        var tiles = (await s.Http.GetFromJsonAsync<JsonObject>("/api/microscope/tiles?model=googlenet&layer=inception_4c/output&size=96&steps=48"))!;
        Assert.Equal(Enumerable.Range(0, 64), tiles["cached"]!.AsArray().Select(c => c!.GetValue<int>()));

        // Attack: an example photo, BIM at ε = 0.01; before and after with their top classes.
        driver.FindElement(By.Id("nav-attack")).Click();
        driver.FindElement(By.CssSelector("#at-example option[value$='coffee.png']")).Click();
        wait.Until(d => d.FindElement(By.Id("at-photo")).GetDomProperty("value")!.EndsWith("coffee.png", StringComparison.Ordinal));
        // The methods come from the library with their defaults: DeepFool looks for the smallest change, so its
        // budget starts as no cap and its steps at 50; BIM's at eps 0.01 and 10 steps.
        wait.Until(d => d.FindElements(By.CssSelector("#at-method option")).Count == 12);
        driver.FindElement(By.CssSelector("#at-method option[value='deepFool']")).Click();
        Assert.Equal("50", driver.FindElement(By.Id("at-steps")).GetDomProperty("value"));
        Assert.Equal("no cap", driver.FindElement(By.Id("at-eps-value")).Text);
        driver.FindElement(By.CssSelector("#at-method option[value='square']")).Click();
        Assert.Equal("Queries", driver.FindElement(By.Id("at-steps-label")).Text);
        driver.FindElement(By.CssSelector("#at-method option[value='bim']")).Click();
        Assert.Equal("10", driver.FindElement(By.Id("at-steps")).GetDomProperty("value"));
        Assert.Equal("0.01", driver.FindElement(By.Id("at-eps")).GetDomProperty("value"));
        driver.FindElement(By.Id("at-run")).Click();
        wait.Until(d => d.FindElement(By.Id("at-result")).Displayed || d.FindElement(By.Id("at-status")).Text.StartsWith("failed", StringComparison.Ordinal));
        Assert.True(driver.FindElement(By.Id("at-result")).Displayed, driver.FindElement(By.Id("at-status")).Text);
        string before = driver.FindElement(By.Id("at-before-label")).Text, after = driver.FindElement(By.Id("at-after-label")).Text;
        output.WriteLine($"attack: before {before}, after {after}; {driver.FindElement(By.Id("at-metrics")).Text}");
        Assert.StartsWith("espresso", before);
        Assert.NotEqual(before.Split(" (")[0], after.Split(" (")[0]);
        Assert.Contains("L∞ 3.0/255", driver.FindElement(By.Id("at-metrics")).Text); // ε = 2.55/255, saved in whole 8-bit levels: at most ⌈2.55⌉
        driver.ExecuteScript("window.scrollTo(0, 0)");
        driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "attack.png"));

        // Style: an example as content, another as style, a short run with a live preview.
        driver.FindElement(By.Id("nav-style")).Click();
        driver.FindElement(By.CssSelector("#st-example option[value$='coffee.png']")).Click();
        driver.FindElement(By.CssSelector("#st1-example option[value$='chelsea.png']")).Click();
        Set("st-size", "160");
        Set("st-steps", "40");
        driver.FindElement(By.Id("st-run")).Click();
        wait.Until(d => d.FindElement(By.Id("st-state")).Text.StartsWith("done", StringComparison.Ordinal) || d.FindElement(By.Id("st-state")).Text.StartsWith("failed", StringComparison.Ordinal));
        Assert.StartsWith("done", driver.FindElement(By.Id("st-state")).Text);
        Assert.True(int.Parse(driver.FindElement(By.Id("st-preview")).GetDomAttribute("data-updates")!) >= 2);
        driver.ExecuteScript("window.scrollTo(0, 0)");
        driver.GetScreenshot().SaveAsFile(Path.Combine(Shots, "style.png"));

        var jobs = (await s.Http.GetFromJsonAsync<JsonArray>("/api/jobs"))!.Where(j => j!["kind"]!.GetValue<string>() == "dream").Select(j => j!.AsObject()).OrderBy(j => j["id"]!.GetValue<long>()).ToList();
        Assert.Equal(["done", "cancelled", "done"], jobs.Select(j => j["state"]!.GetValue<string>()));
        Assert.All(jobs, j => Assert.Equal(1, j["runs"]!.GetValue<int>()));
        Assert.Equal(jobs[0]["model"]!.GetValue<string>(), jobs[2]["model"]!.GetValue<string>());
        // The re-run gives the same pixels as the first run.
        byte[] a = await s.Http.GetByteArrayAsync(jobs[0]["files"]![0]!.GetValue<string>());
        byte[] b = await s.Http.GetByteArrayAsync(jobs[2]["files"]![0]!.GetValue<string>());
        using var ia = Reverie.Imaging.ImageIO.Decode(a);
        using var ib = Reverie.Imaging.ImageIO.Decode(b);
        Assert.True(ia.eq(ib).all().item<bool>());
    }
}
