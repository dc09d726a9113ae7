using System.Security.Cryptography;

namespace Reverie.Models.Registry;

/// <summary>Progress of a download: bytes so far and the total when known.</summary>
public readonly record struct DownloadProgress(long Received, long? Total);

/// <summary>
/// Downloads a file to a temporary name beside its destination, hashing as it goes; checks the
/// length and SHA-256, then renames it into place. A failed, interrupted or corrupt download
/// leaves nothing behind.
/// </summary>
internal static class Downloader
{
    // Redirects are followed here, not by the handler: only to http(s) addresses, at most five.
    static readonly HttpClient Client = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(15), AllowAutoRedirect = false }) { Timeout = Timeout.InfiniteTimeSpan };
    const int MaxRedirects = 5;

    /// <summary>Downloads <paramref name="url"/> to <paramref name="destination"/>; returns the file's SHA-256.</summary>
    public static async Task<string> DownloadAsync(string url, string destination, string? expectedSha256, long? expectedSize,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default, string? expectedPrefix = null)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(destination))!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.part");
        try
        {
            using var response = await SendAsync(url, cancel);
            if (!response.IsSuccessStatusCode)
                throw new ReverieException($"Download of {url} failed: the server answered {(int)response.StatusCode} {response.ReasonPhrase}.");
            long? total = response.Content.Headers.ContentLength ?? expectedSize;
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long received = 0;
            await using (var body = await response.Content.ReadAsStreamAsync(cancel))
            await using (var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                while (true)
                {
                    int n;
                    try { n = await body.ReadAsync(buffer, cancel); }
                    catch (Exception e) when (e is IOException or HttpRequestException)
                    {
                        throw new ReverieException($"Download of {url} was interrupted after {received:N0} bytes ({e.Message.TrimEnd('.')}).", e);
                    }
                    if (n == 0) break;
                    await file.WriteAsync(buffer.AsMemory(0, n), cancel);
                    sha.AppendData(buffer, 0, n);
                    received += n;
                    if (expectedSize is { } max && received > max)
                        throw new ReverieException($"Download of {url} is larger than the expected {max:N0} bytes; refused.");
                    progress?.Report(new DownloadProgress(received, total));
                }
                await file.FlushAsync(cancel);
            }
            if (response.Content.Headers.ContentLength is { } announced && received != announced)
                throw new ReverieException($"Download of {url} was interrupted: {received:N0} of {announced:N0} bytes arrived.");
            if (expectedSize is { } size && received != size)
                throw new ReverieException($"Download of {url} has {received:N0} bytes where {size:N0} were expected.");
            string hash = Convert.ToHexStringLower(sha.GetHashAndReset());
            if (expectedSha256 is not null && !string.Equals(hash, expectedSha256, StringComparison.OrdinalIgnoreCase))
                throw new ReverieException($"Download of {url} is corrupt: its SHA-256 is {hash}, expected {expectedSha256.ToLowerInvariant()}.");
            if (expectedPrefix is not null && !hash.StartsWith(expectedPrefix, StringComparison.OrdinalIgnoreCase))
                throw new ReverieException($"Download of {url} is corrupt: its SHA-256 is {hash}, which does not begin with the published {expectedPrefix.ToLowerInvariant()}.");
            File.Move(tmp, destination, overwrite: true);
            return hash;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    static async Task<HttpResponseMessage> SendAsync(string url, CancellationToken cancel)
    {
        var at = new Uri(url);
        for (int hop = 0; ; hop++)
        {
            if (at.Scheme is not ("http" or "https"))
                throw new ReverieException($"Download of {url} was redirected to '{BadInputException.Shown(at.Scheme)}:' address; only http and https are followed.");
            HttpResponseMessage response;
            try { response = await Client.GetAsync(at, HttpCompletionOption.ResponseHeadersRead, cancel); }
            catch (HttpRequestException e) { throw new ReverieException($"Cannot download {url}: {e.Message.TrimEnd('.')}.", e); }
            int code = (int)response.StatusCode;
            if (code is not (301 or 302 or 303 or 307 or 308)) return response;
            var location = response.Headers.Location;
            response.Dispose();
            if (location is null) throw new ReverieException($"Download of {url} was redirected with no address to go to.");
            if (hop >= MaxRedirects) throw new ReverieException($"Download of {url} was redirected more than {MaxRedirects} times; refused.");
            at = location.IsAbsoluteUri ? location : new Uri(at, location);
        }
    }

    /// <summary>SHA-256 of a file, lower-case hex.</summary>
    public static string Sha256Of(string path) => Imaging.InputFile.Sha256(path, "file", confined: false);
}
