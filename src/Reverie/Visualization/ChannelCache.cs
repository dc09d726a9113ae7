using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Reverie.Imaging;
using Reverie.Jobs;
using Reverie.Models.Registry;
using static TorchSharp.torch;

namespace Reverie.Visualization;

/// <summary>
/// Feature visualizations of single channels, made once and kept under the model cache
/// (<c>$REVERIE_CACHE/visualizations/KEY/CHANNEL-sSIZE-nSTEPS-seedSEED.png</c>), KEY hashing the
/// weights (the file's SHA-256, or the registry's, or a built-in model's name and Reverie's version),
/// the layer and the settings that change the picture. <c>reverie activations</c>, <c>reverie atlas
/// --cache</c> and the studio's microscope share it. A tile is kept as 8-bit PNG, and a run that
/// reads it draws with the same 8-bit values as the run that made it.
/// </summary>
internal static class ChannelCache
{
    /// <summary>The folder of a model's layer (<paramref name="layer"/>: its name in the layer table, as <c>reverie models layers</c> prints it, whatever alias the user gave).</summary>
    public static string Dir(ModelRegistry registry, string model, string layer, VisualizeOptions v, Precision precision)
    {
        string weights = WeightsId(registry, model);
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(weights + "\n" + layer + "\n" + v.Param + v.Transforms + v.LearningRate.ToString("R", CultureInfo.InvariantCulture) + precision)))[..24].ToLowerInvariant();
        return Path.Combine(registry.CacheDir, "visualizations", key);
    }

    /// <summary>
    /// What identifies a model's weights: a file's SHA-256; for a registry name, the hash of the file
    /// installed under it (which differs from the registry's for a file installed with --force), else
    /// the registry's; for a built-in model, its name and Reverie's version. Batch manifests record it
    /// and the microscope's cache is keyed by it, so two different files never pass for one model.
    /// </summary>
    public static string WeightsId(ModelRegistry registry, string model) =>
        System.IO.File.Exists(model) ? Downloader.Sha256Of(model)
            : registry.Contains(model) && registry.Record(registry.Get(model))?.Sha256 is { Length: > 0 } installed ? installed
            : registry.Contains(model) && registry.Get(model).Sha256 is { } sha ? sha
            : model + "@" + typeof(ChannelCache).Assembly.GetName().Version;

    /// <summary>A channel's file in <paramref name="dir"/>.</summary>
    public static string File(string dir, int channel, VisualizeOptions v, int seed) =>
        Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"{channel}-s{v.Size}-n{v.Steps}-seed{seed}.png"));

    /// <summary>A cached tile [1,3,S,S], or null when there is none (a damaged file counts as none).</summary>
    public static Tensor? Load(string file)
    {
        if (!System.IO.File.Exists(file)) return null;
        try { return ImageIO.Load(file); }
        catch (BadInputException) { return null; }
    }

    /// <summary>Rounds a tile to 8 bits, as the cache keeps it, and writes it (atomically) when <paramref name="file"/> is given.</summary>
    public static Tensor Keep(Tensor tile, string? file)
    {
        var kept = tile.mul(S(255)).round_().div_(S(255));
        if (file is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            ImageIO.Save(kept, file);
        }
        return kept;
    }
}
