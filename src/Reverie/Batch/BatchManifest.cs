using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Reverie.Imaging;
using Reverie.Recipes;

namespace Reverie.Batch;

/// <summary>One independent piece of a batch: a job's full recipe, and the content-addressed name of its output.</summary>
internal sealed record BatchItem
{
    /// <summary>The first 20 hex digits of the SHA-256 of the recipe's command and options: the output's name.</summary>
    public required string Id { get; init; }
    /// <summary>What the item is, for people: <c>conv2/7</c>, a photo's name.</summary>
    public required string Name { get; init; }
    /// <summary>What the item's product needs to know of it (a layer and channel, a photo).</summary>
    public JsonObject Meta { get; init; } = new();
    /// <summary>The job's recipe; run as <c>reverie replay</c> would run it.</summary>
    public required Recipe Recipe { get; init; }

    /// <summary>The id of a recipe: the same work always has the same name, whoever planned it.</summary>
    public static string IdOf(Recipe recipe) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(recipe.Command + "\n" + recipe.Options?.ToJsonString()))).ToLowerInvariant()[..20];
}

/// <summary>
/// A batch's manifest (<c>reverie batch plan</c>): what kind of product it makes, its output folder,
/// the threads each item runs with, and its items. Shards (<c>reverie batch run --shard I/N</c>) take
/// items I, I+N, I+2N ... and write <c>OUT/items/ID.png</c> with its recipe and a <c>.done</c> file
/// of hashes; <c>reverie batch merge</c> builds the product from them.
/// </summary>
internal sealed record BatchManifest
{
    /// <summary>The format's name, checked on load.</summary>
    public const string FormatName = "reverie-batch";
    /// <summary>The format's version; a manifest of another version is refused.</summary>
    public const int CurrentVersion = 1;
    /// <summary>The most items one manifest holds.</summary>
    public const int MaxItems = 1_000_000;

    /// <summary>Always <see cref="FormatName"/>.</summary>
    public string Format { get; init; } = FormatName;
    /// <summary>The format's version.</summary>
    public int Version { get; init; } = CurrentVersion;
    /// <summary>The Reverie that planned it.</summary>
    public string Reverie { get; init; } = typeof(BatchManifest).Assembly.GetName().Version?.ToString(3) ?? "0";
    /// <summary>The product: <c>microscope</c> or <c>dream</c>.</summary>
    public required string Kind { get; init; }
    /// <summary>The output folder: relative to the manifest's folder when it lies inside it (so that a shared folder may be mounted anywhere), else absolute.</summary>
    public required string Out { get; init; }
    /// <summary>CPU threads every item runs with, whatever the machine: results do not depend on where an item ran.</summary>
    public int Threads { get; init; } = 1;
    /// <summary>When it was planned; every item's recipe carries this time, so that an item's file is the same bytes wherever it is made.</summary>
    public DateTime Created { get; init; }
    /// <summary>What the product needs beyond the items (the model, the settings).</summary>
    public JsonObject Plan { get; init; } = new();
    /// <summary>The items.</summary>
    public required IReadOnlyList<BatchItem> Items { get; init; }

    /// <summary>The file it was loaded from or saved to.</summary>
    [JsonIgnore] public string File { get; private set; } = "";

    /// <summary>The output folder, absolute.</summary>
    [JsonIgnore] public string OutDir => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(File) ?? ".", Out));

    /// <summary>The folder of the items' files.</summary>
    [JsonIgnore] public string ItemsDir => Path.Combine(OutDir, "items");

    /// <summary>The items of shard <paramref name="index"/> of <paramref name="count"/>: every count-th item from the index-th.</summary>
    public IEnumerable<BatchItem> Shard(int index, int count) => Items.Where((_, k) => k % count == index);

    /// <summary>Writes the manifest atomically and creates its output folder.</summary>
    public void Save(string path)
    {
        File = Path.GetFullPath(path);
        try { Directory.CreateDirectory(ItemsDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new BadInputException($"The output folder '{BadInputException.Shown(OutDir, 120)}' cannot be made ({BadInputException.Shown(e.Message, 80)}).", e); }
        AtomicFile.WriteAllText(File, JsonSerializer.Serialize(this, Recipe.JsonOptions));
    }

    /// <summary>The output folder as a manifest at <paramref name="manifest"/> records it.</summary>
    public static string OutFor(string manifest, string outDir)
    {
        string from = Path.GetDirectoryName(Path.GetFullPath(manifest))!, to = Path.GetFullPath(outDir);
        string rel = Path.GetRelativePath(from, to);
        return rel == ".." || rel.StartsWith("../", StringComparison.Ordinal) || Path.IsPathRooted(rel) ? to : rel;
    }

    /// <summary>The largest manifest read: 512 MB.</summary>
    const long MaxBytes = 512L << 20;

    /// <summary>Whether <paramref name="path"/> holds a batch manifest (of any version): a file Reverie may replace.</summary>
    public static bool IsManifest(string path)
    {
        try { return JsonNode.Parse(Imaging.InputFile.ReadAllText(path, "batch manifest", MaxBytes)) is JsonObject o && o["format"]?.GetValueKind() == JsonValueKind.String && (string?)o["format"] == FormatName; }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or BadInputException) { return false; }
    }

    /// <summary>Reads a manifest; a missing, malformed or foreign file, another version, or a missing output folder is one sentence.</summary>
    public static BatchManifest Load(string path)
    {
        string shown = BadInputException.Shown(path);
        if (Directory.Exists(path)) throw new BadInputException($"'{shown}' is a folder, not a batch manifest.");
        if (!System.IO.File.Exists(path) && Imaging.InputFile.Roots is null) throw new BadInputException($"There is no batch manifest '{shown}'.");
        string text = Imaging.InputFile.ReadAllText(path, "batch manifest", MaxBytes);
        BatchManifest? m;
        try
        {
            var node = JsonNode.Parse(text) as JsonObject
                ?? throw new BadInputException($"'{shown}' is not a batch manifest (not a JSON object).");
            if (node["format"]?.GetValueKind() != JsonValueKind.String || (string?)node["format"] != FormatName)
                throw new BadInputException($"'{shown}' is not a batch manifest (no \"format\": \"{FormatName}\").");
            int version = node["version"]?.GetValueKind() == JsonValueKind.Number ? (int)node["version"]! : -1;
            if (version != CurrentVersion)
                throw new BadInputException($"'{shown}' is a batch manifest of format version {version} (from Reverie {BadInputException.Shown((string?)node["reverie"] ?? "?")}); this Reverie reads version {CurrentVersion}: plan it again.");
            m = node.Deserialize<BatchManifest>(Recipe.JsonOptions);
        }
        catch (JsonException e) { throw new BadInputException($"'{shown}' is not a valid batch manifest ({BadInputException.Shown(e.Message.Split('.')[0], 120)})."); }
        catch (FormatException e) { throw new BadInputException($"'{shown}' is not a valid batch manifest ({BadInputException.Shown(e.Message.Split('.')[0], 120)})."); }
        catch (InvalidOperationException e) { throw new BadInputException($"'{shown}' is not a valid batch manifest ({BadInputException.Shown(e.Message.Split('.')[0], 120)})."); }
        if (m is null || m.Items is null || m.Items.Count == 0) throw new BadInputException($"'{shown}' holds no items.");
        if (m.Items.Count > MaxItems) throw new BadInputException($"'{shown}' holds {m.Items.Count} items; a manifest holds at most {MaxItems}.");
        if (m.Threads is < 1 or > 64) throw new BadInputException($"'{shown}': threads must be from 1 to 64; got {m.Threads}.");
        m.File = Path.GetFullPath(path);
        // The kind, the manifest's name and its output folder go into cluster scripts and YAML: known words and plain text only.
        if (!BatchPlans.Kinds.Contains(m.Kind))
            throw new BadInputException($"'{shown}' is a batch of kind '{BadInputException.Shown(m.Kind)}', which Reverie does not plan (kinds: {string.Join(", ", BatchPlans.Kinds)}).");
        if (m.File.Any(char.IsControl) || m.OutDir.Any(char.IsControl))
            throw new BadInputException($"'{shown}' or its output folder has a control character (such as a new line) in its name; rename it: such a name cannot go into a cluster script.");
        foreach (var item in m.Items)
        {
            // Ids name files: only what the planner writes, and only the work the recipe describes.
            if (item?.Recipe is null || item.Id is null || item.Id.Length != 20 || !item.Id.All(char.IsAsciiHexDigitLower) || item.Id != BatchItem.IdOf(item.Recipe))
                throw new BadInputException($"'{shown}': the item '{BadInputException.Shown(item?.Name ?? "?")}' has an id that does not match its recipe; the manifest was changed by hand. Plan it again.");
        }
        if (m.Items.Select(i => i.Id).Distinct().Count() != m.Items.Count) throw new BadInputException($"'{shown}' holds the same item twice.");
        if (!Directory.Exists(m.OutDir))
            throw new BadInputException($"The batch's output folder '{BadInputException.Shown(m.OutDir)}' does not exist here: on a cluster it must be a shared folder every node mounts at the same place.");
        return m;
    }
}
