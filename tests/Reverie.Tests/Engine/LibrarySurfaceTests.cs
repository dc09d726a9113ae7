using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Reverie.Tests.Engine;

/// <summary>The library's public face: the README's C# example compiles against it and runs, and the surface stays small.</summary>
public class LibrarySurfaceTests(ITestOutputHelper output)
{
    static string ReadmeExample()
    {
        string readme = File.ReadAllText(Path.Combine(Paths.RepoRoot, "README.md"));
        int section = readme.IndexOf("## Use it from C#", StringComparison.Ordinal);
        Assert.True(section >= 0, "the README has no 'Use it from C#' section");
        var m = Regex.Match(readme[section..], "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(m.Success, "the 'Use it from C#' section has no csharp block");
        return m.Groups[1].Value;
    }

    [Fact]
    public async Task TheReadmesCSharpExampleCompilesAndRuns()
    {
        using var tmp = Paths.Temp();
        string output1 = tmp.File("coffee-dream.png");
        // The example's relative paths, made absolute (the test must not change the process's folder).
        string code = ReadmeExample()
            .Replace("\"examples/coffee.png\"", $"\"{Path.Combine(Paths.RepoRoot, "examples", "coffee.png")}\"")
            .Replace("\"coffee-dream.png\"", $"\"{output1}\"");
        // The whole framework (whatever this process has loaded so far) plus Reverie and TorchSharp.
        var framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var references = framework
            .Concat(AppDomain.CurrentDomain.GetAssemblies().Where(a => !a.IsDynamic && a.Location.Length > 0).Select(a => a.Location))
            .Append(typeof(Reverie.Dreaming.DeepDream).Assembly.Location)
            .Append(typeof(TorchSharp.torch).Assembly.Location)
            .Where(File.Exists)
            .DistinctBy(Path.GetFileName)
            .Select(f => MetadataReference.CreateFromFile(f));
        // The implicit usings of a new console project (dotnet new console), which the example assumes.
        const string implicitUsings = "global using System; global using System.IO; global using System.Linq; global using System.Collections.Generic; global using System.Threading; global using System.Threading.Tasks;";
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var compilation = CSharpCompilation.Create("ReadmeExample",
            [CSharpSyntaxTree.ParseText(implicitUsings, parse), CSharpSyntaxTree.ParseText(code, parse)],
            references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var dll = new MemoryStream();
        var emitted = compilation.Emit(dll);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        var entry = Assembly.Load(dll.ToArray()).EntryPoint!;
        var result = entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]);
        if (result is Task t) await t;
        using var dream = ImageIO.Load(output1);
        using var photo = ImageIO.Load(Path.Combine(Paths.RepoRoot, "examples", "coffee.png"));
        Assert.Equal(photo.shape, dream.shape);
        double psnr = Filters.Psnr(dream, photo);
        output.WriteLine($"README example: dream {dream.shape[3]}x{dream.shape[2]}, PSNR vs the photo {psnr:0.0} dB");
        Assert.True(psnr < 40, $"the example's dream barely changed the photo (PSNR {psnr:0.0} dB)");
    }

    [Fact]
    public void ThePublicSurfaceIsSmallAndDeclared()
    {
        var types = typeof(Reverie.Objectives.Objective).Assembly.GetExportedTypes();
        string declared = File.ReadAllText(Path.Combine(Paths.RepoRoot, "src", "Reverie", "PublicAPI.Shipped.txt"))
            + File.ReadAllText(Path.Combine(Paths.RepoRoot, "src", "Reverie", "PublicAPI.Unshipped.txt"));
        output.WriteLine($"{types.Length} public types: {string.Join(", ", types.Select(t => t.Name).Order())}");
        Assert.True(types.Length < 60, $"{types.Length} public types");
        foreach (var t in types)
            Assert.Contains("\n" + (t.FullName!.Contains('`') ? t.FullName[..t.FullName.IndexOf('`')] : t.FullName!.Replace('+', '.')), "\n" + declared);
    }
}
