using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Reverie.Models.Registry;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Registry;

/// <summary>A loopback HTTP server serving ../shared/models, with routes that fail in chosen ways.</summary>
public sealed class LoopbackServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly string _root;
    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Serves the files of <paramref name="root"/> (default ../shared/models).</summary>
    public LoopbackServer(string? root = null)
    {
        _root = root ?? Paths.Models;
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); } catch { return; }
            _ = Task.Run(() => Serve(client, _root));
        }
    }

    static async Task Serve(TcpClient client, string root)
    {
        using (client)
        {
            var stream = client.GetStream();
            var reader = new StreamReader(stream, Encoding.ASCII);
            string? request = await reader.ReadLineAsync();
            while (!string.IsNullOrEmpty(await reader.ReadLineAsync())) { }
            string path = request?.Split(' ')[1] ?? "/";
            string[] parts = path.Trim('/').Split('/', 2);
            string route = parts[0], file = parts.Length > 1 ? Path.Combine(root, Path.GetFileName(parts[1])) : "";
            if (route == "redirect-file")
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
                return;
            }
            if (route == "missing" || !File.Exists(file))
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
                return;
            }
            byte[] body = File.ReadAllBytes(file);
            if (route == "corrupt") body[body.Length / 2] ^= 0xFF;
            int send = route == "cut" ? body.Length / 3 : body.Length;
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            if (route == "slow")
            {
                // 1 KiB every 250 ms, long enough to interrupt mid-way on a loaded machine (bounded: the body's length).
                for (int at = 0; at < send; at += 1024)
                {
                    try { await stream.WriteAsync(body.AsMemory(at, Math.Min(1024, send - at))); await stream.FlushAsync(); }
                    catch (IOException) { return; }
                    await Task.Delay(250);
                }
                return;
            }
            await stream.WriteAsync(body.AsMemory(0, send));
            await stream.FlushAsync();
        }
    }

    public void Dispose() { _stop.Cancel(); _listener.Stop(); }
}

/// <summary>The real download path (progress, SHA-256, temp file and rename) against a loopback server.</summary>
public class DownloadTests : IDisposable
{
    readonly LoopbackServer _server = new();
    readonly TempDir _home = new();
    const string Sha = "bd5891fdd7987910bfc3d8fc9a697a88e48309e26e529faa87931fba52904fe8"; // mnist.onnx, from models/README.md
    static readonly long Size = new FileInfo(Path.Combine(Paths.Models, "mnist.onnx")).Length;

    ModelRegistry Registry(string route, string? sha = Sha)
    {
        var reg = new { models = new[] { new { name = "mnist", format = "onnx", file = "mnist.onnx", url = $"{_server.Url}/{route}/mnist.onnx", sha256 = sha, size = Size,
            input = new { width = 28, height = 28, channels = "Gray", scale = 255 } } } };
        string path = _home.File("models.json");
        File.WriteAllText(path, JsonSerializer.Serialize(reg));
        return new ModelRegistry(_home.File("cache"), path);
    }

    string ModelDir => Path.Combine(_home.Path, "cache", "models", "mnist");
    string[] LeftBehind => Directory.Exists(ModelDir) ? Directory.GetFiles(ModelDir) : [];

    [Fact]
    public async Task DownloadsVerifiesAndReportsProgress()
    {
        var reg = Registry("ok");
        var seen = new List<long>();
        string path = await reg.PullAsync("mnist", new SyncProgress(p => seen.Add(p.Received)));
        Assert.Equal(Sha, Downloader.Sha256Of(path));
        Assert.Equal(ModelStatus.Verified, reg.Status(reg.Get("mnist")));
        Assert.Equal(Size, seen.Last());
        Assert.True(seen.SequenceEqual(seen.Order()));
        using var net = await reg.OpenAsync("mnist");
        Assert.Equal(10, net.Layers.Last().Channels);
        Assert.Equal(new[] { "install.json", "mnist.onnx" }, LeftBehind.Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task HashMismatchLeavesNothing()
    {
        var reg = Registry("corrupt");
        var e = await Assert.ThrowsAsync<ReverieException>(() => reg.PullAsync("mnist"));
        Assert.Contains("corrupt", e.Message);
        Assert.Contains(Sha, e.Message);
        Assert.Empty(LeftBehind);
        Assert.Equal(ModelStatus.Missing, reg.Status(reg.Get("mnist")));
    }

    [Fact]
    public async Task InterruptedTransferLeavesNothing()
    {
        var reg = Registry("cut");
        var e = await Assert.ThrowsAsync<ReverieException>(() => reg.PullAsync("mnist"));
        Assert.Contains("interrupted", e.Message);
        Assert.Empty(LeftBehind);
    }

    [Fact]
    public async Task NotFoundLeavesNothing()
    {
        var reg = Registry("missing");
        var e = await Assert.ThrowsAsync<ReverieException>(() => reg.PullAsync("mnist"));
        Assert.Contains("404", e.Message);
        Assert.Empty(LeftBehind);
    }

    [Fact]
    public async Task OfflineRefusesToDownload()
    {
        var reg = Registry("ok");
        reg = new ModelRegistry(reg.CacheDir, reg.UserRegistryPath) { Offline = true };
        var e = await Assert.ThrowsAsync<ReverieException>(() => reg.PullAsync("mnist"));
        Assert.Contains("--offline", e.Message);
    }

    [Fact]
    public void AddRefusesAFileWithTheWrongHashUnlessForced()
    {
        var reg = Registry("ok");
        var e = Assert.Throws<BadInputException>(() => reg.Add("mnist", Paths.GoogLeNet));
        Assert.Contains("--force", e.Message);
        Assert.Empty(LeftBehind);
        reg.Add("mnist", Path.Combine(Paths.Models, "mnist.onnx"));
        Assert.Equal(ModelStatus.Verified, reg.Status(reg.Get("mnist")));
        string registryHash = reg.Get("mnist").Sha256!;
        Assert.Equal(registryHash, Reverie.Visualization.ChannelCache.WeightsId(reg, "mnist"));
        reg.Add("mnist", Paths.GoogLeNet, force: true);
        Assert.Equal(ModelStatus.Unverified, reg.Status(reg.Get("mnist")));
        // What batch manifests record and the microscope's cache is keyed by is the installed file's hash, not the registry's (issue 40).
        Assert.Equal(Downloader.Sha256Of(Paths.GoogLeNet), Reverie.Visualization.ChannelCache.WeightsId(reg, "mnist"));
        Assert.NotEqual(registryHash, Reverie.Visualization.ChannelCache.WeightsId(reg, "mnist"));
        string weights = reg.WeightsPath(reg.Get("mnist"));
        Assert.True(reg.Remove("mnist"));
        Assert.False(File.Exists(weights));
        Assert.Empty(LeftBehind);
    }

    sealed class SyncProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }

    public void Dispose() { _server.Dispose(); _home.Dispose(); }
}
