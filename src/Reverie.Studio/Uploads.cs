using System.Security.Cryptography;
using System.Text.RegularExpressions;
using SkiaSharp;

namespace Reverie.Studio;

/// <summary>An upload refused: the HTTP status and one sentence.</summary>
public sealed class RefusedException(int status, string message) : Exception(message)
{
    /// <summary>The HTTP status to answer with.</summary>
    public int Status { get; } = status;
}

/// <summary>
/// Uploaded images, stored under <c>DATA/uploads</c> by their content's SHA-256: no user string ever
/// becomes a path. An upload is accepted only once its header is within the pixel limit and the whole
/// file decodes.
/// </summary>
public sealed partial class Uploads(StudioSettings settings)
{
    /// <summary>The folder of uploads.</summary>
    public string Dir { get; } = Path.Combine(settings.Data, "uploads");

    /// <summary>Whether a string has the form of an upload id (64 lower-case hex digits).</summary>
    public static bool IsId(string s) => IdPattern().IsMatch(s);

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex IdPattern();

    /// <summary>Uploads being decoded at once, across the studio: one a core.</summary>
    static readonly SemaphoreSlim Decoding = new(Math.Max(1, Environment.ProcessorCount));

    /// <summary>Checks and stores an image; returns its id and size.</summary>
    public (string Id, int Width, int Height) Store(byte[] bytes, string? name)
    {
        string shown = BadInputException.Shown(name ?? "the upload", 60);
        if (bytes.Length == 0) throw new RefusedException(400, $"'{shown}' is empty.");
        if (bytes.Length > settings.MaxUploadBytes) throw new RefusedException(413, $"'{shown}' is {bytes.Length / 1048576.0:0.0} MB, above the studio's upload limit of {settings.MaxUploadBytes / 1048576.0:0.#} MB.");
        using var codec = SKCodec.Create(new SKMemoryStream(bytes));
        if (codec is null) throw new RefusedException(415, $"'{shown}' is not an image the studio reads (PNG, JPEG, WebP, GIF, BMP).");
        long pixels = (long)codec.Info.Width * codec.Info.Height;
        if (pixels > settings.MaxUploadPixels)
            throw new RefusedException(413, $"'{shown}' declares {codec.Info.Width}×{codec.Info.Height} pixels ({pixels / 1e6:0.#} MP), above the studio's limit of {settings.MaxUploadPixels / 1e6:0.#} MP.");
        // The whole image must decode; one decode a core at a time, so that many uploads at once cost
        // the memory of a few images (40 MP is 160 MB decoded), not of all of them.
        Decoding.Wait();
        try
        {
            using var bitmap = new SKBitmap(codec.Info.WithColorType(SKColorType.Rgba8888).WithAlphaType(SKAlphaType.Premul));
            var decoded = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
            if (decoded != SKCodecResult.Success) throw new RefusedException(415, $"'{shown}' could not be decoded: it is damaged or truncated.");
        }
        finally { Decoding.Release(); }
        string ext = codec.EncodedFormat switch
        {
            SKEncodedImageFormat.Png => ".png",
            SKEncodedImageFormat.Jpeg => ".jpg",
            SKEncodedImageFormat.Webp => ".webp",
            SKEncodedImageFormat.Gif => ".gif",
            SKEncodedImageFormat.Bmp => ".bmp",
            _ => throw new RefusedException(415, $"'{shown}' is a {codec.EncodedFormat} image; the studio takes PNG, JPEG, WebP, GIF and BMP."),
        };
        string id = Convert.ToHexStringLower(SHA256.HashData(bytes));
        Directory.CreateDirectory(Dir);
        string path = Path.Combine(Dir, id + ext);
        if (!File.Exists(path)) Reverie.Imaging.AtomicFile.WriteAllBytes(path, bytes);
        return (id, codec.Info.Width, codec.Info.Height);
    }

    /// <summary>The stored file of an id, or null.</summary>
    public string? PathOf(string id) =>
        IsId(id) && Directory.Exists(Dir) ? Directory.EnumerateFiles(Dir, id + ".*").FirstOrDefault(f => !Path.GetFileName(f).StartsWith('.')) : null;
}
