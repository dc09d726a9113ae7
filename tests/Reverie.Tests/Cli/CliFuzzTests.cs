using System.Security.Cryptography;
using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Cli;

/// <summary>
/// The CLI fuzz harness (issue 16): for every command and each of its numeric and path options,
/// values from a hostile set. Each case must exit 2 with one line on stderr and no .NET type
/// name, or exit 0 where the value is legal; no case may change an input, or write anything
/// outside the work folder other than its intended output. Seeded and bounded (a minute a case).
/// The cases run inside the test process (the executable's Main is one call to ReverieCli.RunAsync,
/// and a child process costs half a second of start-up, 277 s of the suite for 697 cases); the first
/// case of each command and kind (number, output path, input path) also runs as a real `reverie`
/// process, which must answer with the same exit code and the same error sentence.
/// </summary>
public class CliFuzzTests(ITestOutputHelper log) : IDisposable
{
    readonly CliHost _cli = new();
    readonly TempDir _box = new();
    public void Dispose() { _cli.Dispose(); _box.Dispose(); }

    static readonly string[] Numbers = ["0", "-1", "NaN", "Infinity", "-Infinity", "1e308", "", new string('9', 400)];

    static string Sha(string f) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));

    /// <summary>Every file below <paramref name="dir"/> (links not followed), with its hash.</summary>
    static Dictionary<string, string> Tree(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Where(File.Exists).Where(f => new FileInfo(f).LinkTarget is null)
            .ToDictionary(f => f, Sha);

    [Fact]
    public void HostileValuesForEveryCommandAndOption()
    {
        string work = _box.File("work"), outside = _box.File("outside");
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(outside);
        string photo = Paths.SmallPhoto(Path.Combine(work, "in.png"), 48, 64);
        string folder = Path.Combine(work, "adir");
        Directory.CreateDirectory(folder);
        string linkOut = Path.Combine(work, "link-out.png");
        File.CreateSymbolicLink(linkOut, Path.Combine(outside, "target.png"));
        string linkIn = Path.Combine(work, "link-passwd.png");
        File.CreateSymbolicLink(linkIn, "/etc/passwd");
        string outPng = Path.Combine(work, "out.png"), outJson = Path.Combine(work, "out.json");

        string[] OutputPaths = [photo, folder, linkOut, "", new string('x', 300) + ".png", Path.Combine(work, "no", "such", "dir", "o.png"), Path.Combine(work, "..", "work", "..", "escape.png")];
        string[] InputPaths = [Path.Combine(work, "missing.png"), folder, linkIn, "", new string('y', 300) + ".png", "/dev/zero"];

        // Each command: its cheap, legal base arguments; its numeric options; its input and output positions.
        var commands = new (string Name, string[] Base, string[] Numeric, int InputAt, string? OutputOption)[]
        {
            ("dream", ["dream", photo, "-m", "textures", "--octaves", "1", "--steps", "1", "--max-size", "48"], ["--octave-scale", "--step-size", "--jitter", "--smooth", "--seed", "--tile", "--zoom-rotate", "--top"], 1, "-o"),
            ("visualize", ["visualize", "-m", "textures", "-O", "conv3:1", "--size", "32", "--steps", "1"], ["--lr", "--diversity", "--batch", "--seed"], -1, "-o"),
            ("atlas", ["atlas", "-m", "textures", "--layer", "conv3", "--channels", "0..1", "--size", "32", "--steps", "1"], ["--per-batch", "--lr", "--seed"], -1, "-o"),
            ("invert", ["invert", photo, "-m", "textures", "--layer", "conv3", "--steps", "1", "--size", "32"], ["--lr", "--seed"], 1, "-o"),
            ("dream-target", ["dream-target", "-m", "textures", "--target", "0", "--steps", "1"], ["--lr", "--seed"], -1, "-o"),
            ("style", ["style", photo, photo, "-m", "textures", "--style-layers", "conv1", "--content-layers", "conv2", "--size", "32", "--steps", "1"], ["--style-weight", "--content-weight", "--tv-weight", "--style-scale", "--save-every", "--lr", "--seed"], 1, "-o"),
            ("attack", ["attack", photo, "-m", "textures", "--method", "bim", "--steps", "1"], ["--eps", "--step-size", "--seed"], 1, "-o"),
            ("attack benchmark", ["attack", "benchmark", "-m", "textures", "--data", "textures", "--n", "4", "--suite", "fgsm,apgd-ce", "--steps", "1"], ["--eps", "--n", "--steps", "--queries", "--targets", "--batch", "--seed"], -1, "-o"),
            ("classify", ["classify", photo, "-m", "textures"], ["--top"], 1, null),
            ("explain", ["explain", photo, "-m", "textures", "--method", "gradcam,occlusion,smoothgrad,ig,lime", "--samples", "1", "--steps", "1", "--stride", "8", "--perturbations", "10", "--superpixels", "4"], ["--steps", "--samples", "--noise", "--window", "--stride", "--superpixels", "--perturbations", "--features", "--top", "--seed"], 1, "-o"),
            ("activations", ["activations", photo, "-m", "textures", "--layer", "conv3", "--top", "2", "--steps", "1", "--size", "32", "--no-cache"], ["--top", "--size", "--steps", "--seed"], 1, "-o"),
            ("stylize", ["stylize", photo, "--net", Path.Combine(Paths.Models, "mnist.onnx"), "--max-size", "32"], ["--tile", "--max-size"], 1, "-o"),
            ("evaluate", ["evaluate", "-m", "textures", "--data", "textures", "--limit", "1"], ["--limit"], -1, null),
            ("science shortcut", ["science", "shortcut", "--train", "40", "--test", "8", "--explained", "1", "--epochs", "1", "--method", "saliency", "--no-random-labels"], ["--train", "--test", "--explained", "--size", "--epochs", "--seed"], -1, "-o"),
            ("models add", ["models", "add", "fuzz", Path.Combine(Paths.Models, "mnist.onnx")], ["--scale", "--mean", "--std", "--size"], 3, null),
            ("batch plan", ["batch", "plan", "microscope", "-m", "fashion", "--layers", "conv2", "--channels", "0..1", "--size", "32", "--steps", "1", "--out", Path.Combine(work, "batch")], ["--size", "--steps", "--lr", "--seed", "--threads-per-item"], -1, "-o"),
        };

        var rng = new Random(16);
        var cases = new List<(string Command, string Kind, string[] Args, string? Output)>();
        foreach (var c in commands)
        {
            // attack benchmark writes a .json report (its Markdown and plot beside it).
            string intended = c.Name == "attack benchmark" ? outJson : outPng;
            string[] WithOut(string[] args, string output) => c.OutputOption is null ? args : [.. args, c.OutputOption, output];
            foreach (var opt in c.Numeric)
                foreach (var v in Numbers)
                    cases.Add((c.Name, "number", WithOut([.. c.Base, opt, v], intended), intended));
            if (c.OutputOption is not null)
                foreach (var o in OutputPaths) cases.Add((c.Name, "output", [.. c.Base, c.OutputOption, o], o));
            if (c.InputAt >= 0)
                foreach (var i in InputPaths)
                {
                    var args = c.Base.ToArray();
                    args[c.InputAt] = i;
                    cases.Add((c.Name, "input", WithOut(args, intended), intended));
                }
        }
        // A seeded shuffle: no case depends on the ones before it.
        cases = cases.OrderBy(_ => rng.Next()).ToList();

        var inputs = new Dictionary<string, string> { [photo] = Sha(photo), ["/etc/passwd"] = Sha("/etc/passwd") };
        var failures = new List<string>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int legal = 0;
        var slowest = new List<(double Seconds, string Case)>();
        var asProcess = new HashSet<(string, string)>();
        int processes = 0;
        foreach (var (command, kind, args, output) in cases)
        {
            var before = Tree(work);
            (int Code, string Out, string Err) r;
            var one = System.Diagnostics.Stopwatch.StartNew();
            string shown = string.Join(' ', args.Select(a => a.Length > 40 ? a[..40] + "…" : a));
            try { r = _cli.RunInProcess(args, TimeSpan.FromSeconds(60)); }
            catch (TimeoutException) { failures.Add($"{string.Join(' ', args.Take(8))}: did not finish in 60 s"); continue; }
            if (asProcess.Add((command, kind)))
            {
                // The same case through the executable, after the in-process run's outputs are put back as they were.
                foreach (var f in Tree(work).Keys.Where(f => !before.ContainsKey(f))) File.Delete(f);
                (int Code, string Out, string Err) p;
                try { p = _cli.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "Reverie.Cli.dll"), .. args], TimeSpan.FromSeconds(60)); }
                catch (TimeoutException) { failures.Add($"{shown}: did not finish in 60 s as a process"); continue; }
                processes++;
                static string Errors(string err) => string.Join("\n", err.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)));
                if (p.Code != r.Code || Errors(p.Err) != Errors(r.Err))
                    failures.Add($"{shown}: in process exit {r.Code} '{Errors(r.Err)}', as a process exit {p.Code} '{Errors(p.Err)}'");
                r = p;
            }
            slowest.Add((one.Elapsed.TotalSeconds, shown));
            var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.Contains("NNPACK")).ToList();
            if (r.Code == 2)
            {
                if (lines.Count != 1 || !lines[0].StartsWith("error: ")) failures.Add($"{shown}: exit 2 but stderr has {lines.Count} lines: {r.Err.Trim()}");
            }
            else if (r.Code == 0) legal++;
            else failures.Add($"{shown}: exit {r.Code}: {r.Err.Trim()}");
            if (System.Text.RegularExpressions.Regex.IsMatch(r.Err, @"System\.[A-Z]|[A-Za-z]+Exception\b|   at "))
                failures.Add($"{shown}: a .NET name on stderr: {r.Err.Trim()}");
            foreach (var (f, sha) in inputs)
                if (Sha(f) != sha) failures.Add($"{shown}: changed the input {f}");
            if (Directory.EnumerateFileSystemEntries(outside).Any()) failures.Add($"{shown}: wrote through the link out of the work folder");
            if (File.Exists(Path.Combine(_box.Path, "escape.png"))) File.Delete(Path.Combine(_box.Path, "escape.png")); // the intended output of a '..' path
            // Nothing else written or changed, except the intended output and its recipe.
            string? full = string.IsNullOrEmpty(output) ? null : Path.GetFullPath(output);
            var allowed = full is null ? new HashSet<string>() : new HashSet<string> { full, Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full) + ".recipe.json"),
                Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full) + "-perturbation.png"),
                Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full) + "-plots.png") }; // science shortcut's figure
            // explain's raw maps: OUT.npy, or OUT.npz for several methods.
            if (full is not null)
                foreach (var ext in new[] { ".npy", ".npz" }) allowed.Add(Path.ChangeExtension(full, ext));
            // attack benchmark's Markdown table and plot beside its report.
            if (full is not null && command == "attack benchmark")
                foreach (var ext in new[] { ".md", ".png" }) allowed.Add(Path.ChangeExtension(full, ext));
            foreach (var (f, sha) in Tree(work))
                if (!allowed.Contains(f) && (!before.TryGetValue(f, out var old) || old != sha)) failures.Add($"{shown}: wrote {f}");
            foreach (var f in allowed.Where(File.Exists).Where(f => f.StartsWith(work, StringComparison.Ordinal) && !before.ContainsKey(f))) File.Delete(f);
        }
        log.WriteLine($"{cases.Count} cases over {commands.Length} commands ({processes} of them also as a process): {legal} legal (exit 0), {cases.Count - legal - failures.Count} refused; {failures.Count} failures; {sw.Elapsed.TotalSeconds:0} s");
        foreach (var (seconds, c) in slowest.OrderByDescending(x => x.Seconds).Take(5)) log.WriteLine($"  {seconds,5:0.0} s  {c}");
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases failed:\n" + string.Join("\n", failures.Take(40)));
    }
}
