using System.Text;
using System.Text.Json;
using Reverie.Models.Torch;
using Reverie.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Reverie.Tests.Models;

/// <summary>safetensors read and write, against a peer written from the specification.</summary>
public class SafeTensorsTests
{
    static string Script => Path.Combine(Paths.RepoRoot, "tests", "scripts", "safetensors_peer.py");

    [Fact]
    public void ReadsThePeersFile()
    {
        using var dir = new TempDir();
        string file = dir.File("peer.safetensors");
        var (code, text) = Python.Run(Script, "write", file);
        Assert.True(code == 0, text);
        var want = JsonDocument.Parse(File.ReadAllText(file + ".json")).RootElement;
        var got = SafeTensors.Load(file, out var meta);
        Assert.Equal("pt", meta["format"]);
        Assert.Equal(new long[] { 4, 3, 3, 3 }, got["conv.weight"].shape);
        Assert.Equal(ScalarType.Float32, got["half"].dtype);
        Assert.Equal(ScalarType.Int64, got["steps"].dtype);
        Assert.Equal(ScalarType.Bool, got["mask"].dtype);
        foreach (var e in want.EnumerateObject())
        {
            var values = e.Value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var mine = got[e.Name].to(ScalarType.Float64).flatten().data<double>().ToArray();
            Assert.Equal(values.Length, mine.Length);
            for (int i = 0; i < values.Length; i++) Assert.Equal(values[i], mine[i], 6);
        }
    }

    [Fact]
    public void WritesWhatThePeerReads()
    {
        using var dir = new TempDir();
        string file = dir.File("mine.safetensors");
        var g = new Generator(3);
        var tensors = new Dictionary<string, Tensor>
        {
            ["a.weight"] = randn(new long[] { 5, 7 }, generator: g).t(),   // non-contiguous: written contiguous
            ["b.half"] = randn(new long[] { 3, 2 }, generator: g).to(ScalarType.Float16),
            ["c.count"] = tensor(new long[] { 1, 2, 1L << 50 }),
        };
        SafeTensors.Save(file, tensors, new Dictionary<string, string> { ["writer"] = "reverie" });
        var bytes = File.ReadAllBytes(file);
        long headerLen = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, (8 + headerLen) % 8);
        var (code, text) = Python.Run(Script, "read", file);
        Assert.True(code == 0, text);
        var peer = JsonDocument.Parse(text.Trim().Split('\n').Last()).RootElement;
        Assert.Equal("reverie", peer.GetProperty("__metadata__").GetProperty("writer").GetString());
        Assert.Equal("F16", peer.GetProperty("b.half").GetProperty("dtype").GetString());
        foreach (var (name, t) in tensors)
        {
            var want = t.to(ScalarType.Float64).contiguous().flatten().data<double>().ToArray();
            var values = peer.GetProperty(name).GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.Equal(want, values);
        }
        // And back.
        var again = SafeTensors.Load(file);
        Assert.True(again["a.weight"].eq(tensors["a.weight"]).all().item<bool>());
        Assert.Equal(ScalarType.Float32, again["b.half"].dtype);
    }

    [Fact]
    public void MalformedFilesAreRefused()
    {
        using var dir = new TempDir();
        void Write(string name, long headerLen, string json, int dataBytes)
        {
            var h = Encoding.UTF8.GetBytes(json);
            File.WriteAllBytes(dir.File(name), [.. BitConverter.GetBytes(headerLen), .. h, .. new byte[dataBytes]]);
        }
        Write("huge.safetensors", 1L << 40, "{}", 0);
        Write("overlap.safetensors", 96, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}".PadRight(96), 12);
        Write("short.safetensors", 56, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}".PadRight(56), 8);
        Write("past.safetensors", 56, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}".PadRight(56), 8);
        Write("notjson.safetensors", 8, "nonsense", 0);
        foreach (var (file, expected) in new[] { ("huge", "header length"), ("overlap", "overlap"), ("short", "do not match"), ("past", "do not match"), ("notjson", "not a JSON") })
        {
            var ex = Assert.Throws<BadInputException>(() => SafeTensors.Load(dir.File(file + ".safetensors")));
            Assert.Contains(expected, ex.Message);
        }
    }
}
