using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Jobs;
using Reverie.Recipes;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Engine;

/// <summary>
/// What the build or the job cannot honour is refused by every job, whatever surface sent it: a recipe
/// asking for <c>"device": "cuda"</c> on this CPU build, or bfloat16 of a job whose network runs in fp32
/// only, gets one sentence before anything is loaded (issue 38: seven jobs used to run such recipes on the
/// CPU, in fp32, without a word).
/// </summary>
public class RuntimeRequestTests
{
    /// <summary>Options of <paramref name="job"/> with every required field filled (files: a small photo) and the given extra fields.</summary>
    static JobOptions Options(IJob job, string photo, JsonObject extra)
    {
        var json = new JsonObject();
        foreach (var p in job.OptionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .Where(p => p.GetCustomAttribute<RequiredMemberAttribute>() is not null || p.IsDefined(typeof(RequiredMemberAttribute))))
            json[JsonNamingPolicy.CamelCase.ConvertName(p.Name)] = p.PropertyType == typeof(string) ? photo
                : typeof(IEnumerable<string>).IsAssignableFrom(p.PropertyType) ? new JsonArray(photo)
                : typeof(System.Collections.IEnumerable).IsAssignableFrom(p.PropertyType) ? new JsonArray()
                : p.PropertyType.IsValueType ? JsonSerializer.SerializeToNode(Activator.CreateInstance(p.PropertyType), Recipe.JsonOptions)
                : new JsonObject();
        foreach (var (k, v) in extra) json[k] = v?.DeepClone();
        return (JobOptions)json.Deserialize(job.OptionsType, Recipe.JsonOptions)!;
    }

    static BadInputException Refusal(IJob job, JobOptions options, TempDir dir) =>
        Assert.Throws<BadInputException>(() => job.RunAsync(options, new JobContext { Output = dir.File($"{job.Kind.Replace(' ', '-')}.png"), Recipe = JobCatalog.RecipeFor(job, options) }).GetAwaiter().GetResult());

    [Fact]
    public void CudaOnTheCpuBuildIsRefusedByEveryJob()
    {
        Assert.False(TorchSharp.torch.cuda.is_available(), "this test is about the CPU build");
        using var dir = new TempDir();
        string photo = Paths.SmallPhoto(dir.File("photo.png"));
        var kinds = JobCatalog.Kinds.ToList();
        Assert.True(kinds.Count >= 20, $"{kinds.Count} job kinds");
        foreach (var kind in kinds)
        {
            var job = JobCatalog.Find(kind)!;
            var e = Refusal(job, Options(job, photo, new JsonObject { ["device"] = "cuda" }), dir);
            Assert.Contains("--device cuda: CUDA is not available", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => !f.EndsWith("photo.png"));
    }

    [Fact]
    public void BFloat16IsRefusedByTheJobsThatRunInFp32Only()
    {
        using var dir = new TempDir();
        string photo = Paths.SmallPhoto(dir.File("photo.png"));
        var honour = new List<string>();
        foreach (var kind in JobCatalog.Kinds)
        {
            var job = JobCatalog.Find(kind)!;
            if ((bool)job.GetType().GetProperty("HonoursBFloat16", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(job)!) { honour.Add(kind); continue; }
            var options = Options(job, photo, new JsonObject { ["precision"] = "Bf16" });
            Assert.True(options.BFloat16);
            var e = Refusal(job, options, dir);
            Assert.Equal($"{kind} runs its network in fp32 only; drop --precision bf16 (\"precision\": \"Bf16\" in a recipe).", e.Message);
        }
        // The jobs whose command line offers --precision are the ones that honour it.
        Assert.Equal(["activations", "atlas", "dream", "dream-target", "explain", "invert", "style", "style-grid", "visualize"], honour.Order());
    }
}
