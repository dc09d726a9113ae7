using Reverie.Recipes;

namespace Reverie.Imaging;

/// <summary>
/// The one policy for files Reverie writes: an output never replaces one of the run's inputs, is
/// never a folder, and replaces an existing file only when Reverie wrote that file (a PNG with a
/// recipe chunk, or a file with a recipe sidecar beside it) or when the user forces it. The recipe
/// sidecar is <c>OUT.recipe.json</c>, a name no other file of Reverie's (or of anyone else's
/// checkpoint <c>OUT.json</c>) takes, and it too replaces only a recipe.
/// </summary>
internal static class OutputFiles
{
    /// <summary>The longest output file name, in UTF-8 bytes.</summary>
    public const int MaxNameBytes = 180;

    /// <summary>The recipe sidecar of an output: <c>OUT.recipe.json</c> beside <c>OUT.png</c>.</summary>
    public static string SidecarOf(string output) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(output))!, Path.GetFileNameWithoutExtension(output) + ".recipe.json");

    /// <summary>
    /// Raises <see cref="BadInputException"/> when writing <paramref name="output"/> (and its recipe
    /// sidecar, when <paramref name="sidecar"/>) would replace an input, write into a folder that
    /// does not exist, take the place of a folder, or replace a file Reverie did not write (unless
    /// <paramref name="force"/>).
    /// </summary>
    public static void Check(string output, IEnumerable<string> inputs, bool force = false, bool sidecar = true, string? runSidecar = null)
    {
        if (string.IsNullOrWhiteSpace(output)) throw new BadInputException("The output path is empty; name a file.");
        string full;
        try { full = Path.GetFullPath(output); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        { throw new BadInputException($"'{BadInputException.Shown(output)}' is not a usable output path.", e); }
        // Room for the temporary name the atomic write uses beside it (file systems allow 255 bytes a name).
        if (System.Text.Encoding.UTF8.GetByteCount(Path.GetFileName(full)) > MaxNameBytes)
            throw new BadInputException($"The output's file name is {System.Text.Encoding.UTF8.GetByteCount(Path.GetFileName(full))} bytes long; at most {MaxNameBytes} are accepted.");
        if (Directory.Exists(full)) throw new BadInputException($"The output '{BadInputException.Shown(output)}' is a folder; name a file in it.");
        string? dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
            throw new BadInputException($"The folder of the output, '{BadInputException.Shown(dir, 120)}', does not exist.");
        string real = Real(full);
        foreach (var input in inputs)
            if (File.Exists(input) && string.Equals(Real(Path.GetFullPath(input)), real, StringComparison.Ordinal))
                throw new BadInputException($"The output '{BadInputException.Shown(output)}' is an input of this run; name another file (Reverie never replaces its inputs).");
        if (File.Exists(full) && !force && !WrittenByReverie(full, runSidecar))
            throw new BadInputException($"'{BadInputException.Shown(output)}' exists and was not written by Reverie; name another file, or give --force to replace it.");
        if (!sidecar) return;
        string side = SidecarOf(full);
        if (Directory.Exists(side)) throw new BadInputException($"The recipe file '{BadInputException.Shown(side, 120)}' would replace a folder; name another output.");
        if (File.Exists(side) && !force && !IsRecipe(side))
            throw new BadInputException($"'{BadInputException.Shown(side, 120)}' exists and is not a Reverie recipe; name another output, or give --force to replace it.");
        foreach (var input in inputs)
            if (File.Exists(input) && string.Equals(Real(Path.GetFullPath(input)), Real(side), StringComparison.Ordinal))
                throw new BadInputException($"The recipe file '{BadInputException.Shown(side, 120)}' would replace an input of this run; name another output.");
    }

    /// <summary>The sidecar's key for the output it describes: <c>{"file": NAME, "sha256": HASH}</c>.</summary>
    internal const string OutputKey = "output";

    /// <summary>The sidecar's key for the further files of the run (raw maps, tables, reports): a list of fingerprints.</summary>
    internal const string FilesKey = "files";

    /// <summary>The file name (relative to <paramref name="folder"/>) and SHA-256 of a written output, as the sidecar records them.</summary>
    internal static System.Text.Json.Nodes.JsonObject Fingerprint(string output, string? folder = null) => new()
    {
        ["file"] = folder is null ? Path.GetFileName(output) : Path.GetRelativePath(folder, Path.GetFullPath(output)),
        ["sha256"] = Models.Registry.Downloader.Sha256Of(output),
    };

    /// <summary>
    /// Adds a further file of a run to its recipe sidecar <paramref name="side"/> (when the sidecar
    /// exists), so that the next run may replace it without --force.
    /// </summary>
    internal static void Record(string side, string file)
    {
        if (!IsRecipe(side)) return;
        var node = System.Text.Json.Nodes.JsonNode.Parse(InputFile.ReadAllText(side, "recipe", Recipe.MaxJsonBytes, confined: false))!.AsObject();
        string folder = Path.GetDirectoryName(Path.GetFullPath(side))!;
        var print = Fingerprint(file, folder);
        var files = node[FilesKey] as System.Text.Json.Nodes.JsonArray ?? [];
        node[FilesKey] = null;
        foreach (var old in files.Where(e => e?["file"]?.GetValue<string>() == print["file"]!.GetValue<string>()).ToList()) files.Remove(old);
        files.Add(print);
        node[FilesKey] = files;
        AtomicFile.WriteAllText(side, node.ToJsonString(Recipe.JsonOptions));
    }

    /// <summary>
    /// Whether Reverie wrote <paramref name="path"/>, proven about that very file: a PNG with its
    /// recipe chunk, or a file whose recipe sidecar names it and its current SHA-256. A sidecar
    /// alone proves nothing (two outputs with one stem share its name, and a user's own file may
    /// sit beside a recipe), and neither does the OUT.json of versions before 0.3.
    /// </summary>
    public static bool WrittenByReverie(string path, string? runSidecar = null)
    {
        if (SidecarNames(SidecarOf(path), path) || (runSidecar is not null && SidecarNames(runSidecar, path))) return true;
        try
        {
            if (!InputFile.IsRegularFile(path) || new FileInfo(path).Length > 512L * 1024 * 1024) return false;
            return PngText.Read(File.ReadAllBytes(path)).ContainsKey(Recipe.Keyword);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Whether <paramref name="path"/> is a Reverie recipe (a small JSON object with its version and command).</summary>
    public static bool IsRecipe(string path)
    {
        try
        {
            if (!InputFile.IsRegularFile(path) || new FileInfo(path).Length > 16 * 1024 * 1024) return false;
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && doc.RootElement.TryGetProperty("version", out _) && doc.RootElement.TryGetProperty("command", out _);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException) { return false; }
    }

    /// <summary>Whether the recipe sidecar <paramref name="side"/> records <paramref name="path"/> as its output, with the file's current hash.</summary>
    static bool SidecarNames(string side, string path)
    {
        try
        {
            if (!IsRecipe(side) || !InputFile.IsRegularFile(path)) return false;
            using var doc = System.Text.Json.JsonDocument.Parse(InputFile.ReadAllText(side, "recipe", Recipe.MaxJsonBytes, confined: false));
            string name = Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(side))!, Path.GetFullPath(path));
            var entries = new List<System.Text.Json.JsonElement>();
            if (doc.RootElement.TryGetProperty(OutputKey, out var o)) entries.Add(o);
            if (doc.RootElement.TryGetProperty(FilesKey, out var list) && list.ValueKind == System.Text.Json.JsonValueKind.Array) entries.AddRange(list.EnumerateArray());
            string? hash = null;
            foreach (var e in entries)
            {
                if (e.ValueKind != System.Text.Json.JsonValueKind.Object || !e.TryGetProperty("file", out var f) || f.ValueKind != System.Text.Json.JsonValueKind.String || f.GetString() != name) continue;
                hash ??= Models.Registry.Downloader.Sha256Of(path);
                if (e.TryGetProperty("sha256", out var h) && h.ValueKind == System.Text.Json.JsonValueKind.String && string.Equals(h.GetString(), hash, StringComparison.OrdinalIgnoreCase)) return true;
            }
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or BadInputException) { return false; }
    }

    static string Real(string full) => Models.ConfinedPath.Real(full);
}
