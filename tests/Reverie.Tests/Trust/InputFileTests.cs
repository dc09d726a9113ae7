using System.Diagnostics;
using Reverie.Imaging;
using Reverie.Models.Registry;
using Reverie.Objectives;
using Reverie.Tests.Infrastructure;

namespace Reverie.Tests.Trust;

/// <summary>
/// Issue 36's probe (defects 1–3): the one reader for paths from outside. Every file read of text,
/// JSON, vectors, labels, manifests, registries and recipes goes through <see cref="InputFile"/>;
/// these tests pin what it refuses, and that the readers built on it refuse the same.
/// </summary>
public sealed class InputFileTests : IDisposable
{
    readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    static string Fifo(string path)
    {
        using var p = Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }

    /// <summary>Runs <paramref name="read"/> on a thread and fails if it has not ended in 10 s (a pipe would block it for ever).</summary>
    static BadInputException RefusedQuickly(Action read)
    {
        var task = Task.Run(() => Assert.Throws<BadInputException>(read));
        Assert.True(task.Wait(TimeSpan.FromSeconds(10)), "the read blocked instead of refusing");
        return task.Result;
    }

    [Fact]
    public void P03_DevicesAndNamedPipesAreRefusedBeforeTheyAreOpened()
    {
        string fifo = Fifo(_tmp.File("pipe"));
        foreach (var path in new[] { "/dev/zero", "/dev/full", fifo, "/proc/self/fd/0" })
        {
            var e = RefusedQuickly(() => InputFile.ReadAllText(path, "direction file", 16 << 20));
            Assert.Contains("not a regular file", e.Message);
        }
        // The readers built on it: a direction vector, a labels file, a recipe, a batch manifest, a model file.
        RefusedQuickly(() => Labels.Load("/dev/zero"));
        RefusedQuickly(() => Labels.Load(fifo));
        RefusedQuickly(() => Reverie.Recipes.Recipe.Load(fifo + ".json"));
        RefusedQuickly(() => Reverie.Batch.BatchManifest.Load("/dev/zero"));
        RefusedQuickly(() => Reverie.Models.Onnx.OnnxGraph.Load(fifo));
        var folder = RefusedQuickly(() => InputFile.ReadAllText(_tmp.Path, "labels file", 100));
        Assert.Contains("is a folder", folder.Message);
    }

    [Fact]
    public void P03_AFileIsReadOnlyUpToItsLimitEvenWhenItsSizeSaysLess()
    {
        string big = _tmp.File("big.txt");
        File.WriteAllText(big, new string('1', 5000));
        Assert.Equal(5000, InputFile.ReadAllText(big, "direction file", 5000).Length);
        Assert.Contains("larger than the 4.9 kB", Assert.Throws<BadInputException>(() => InputFile.ReadAllText(big, "direction file", 4999)).Message);
        // /proc files report a size of 0 and then give data: the count of bytes read decides.
        string environ = $"/proc/{Environment.ProcessId}/environ";
        Assert.Equal(0, new FileInfo(environ).Length);
        Assert.Contains("larger than", Assert.Throws<BadInputException>(() => InputFile.ReadAllBytes(environ, "labels file", 4)).Message);
    }

    [Fact]
    public void P01_AConfinedReadRefusesOutsideFilesAndLinksAlikeAndSaysNothingOfExistence()
    {
        string root = Directory.CreateDirectory(_tmp.File("data")).FullName;
        string inside = Path.Combine(root, "v.txt");
        File.WriteAllText(inside, "1, 2, 3");
        File.CreateSymbolicLink(Path.Combine(root, "passwd"), "/etc/passwd");
        Directory.CreateSymbolicLink(Path.Combine(root, "etc"), "/etc");
        using (InputFile.Confine([root]))
        {
            Assert.Equal("1, 2, 3", InputFile.ReadAllText(inside, "direction file", 100));
            string[] refused = ["/etc/passwd", "/etc/no-such-file", Path.Combine(root, "passwd"), Path.Combine(root, "etc", "hostname"),
                Path.Combine(root, "..", "..", "etc", "passwd"), "/proc/self/environ"];
            var messages = refused.Select(p => Assert.Throws<BadInputException>(() => InputFile.ReadAllText(p, "direction file", 1 << 20)).Message).ToList();
            Assert.All(messages, m => Assert.Contains("lies outside the studio's data folder", m));
            Assert.All(messages, m => Assert.DoesNotContain("root:", m));
            Assert.All(messages, m => Assert.DoesNotContain("does not exist", m));
            // The objective language reads its direction files through it.
            Assert.Contains("lies outside", Assert.Throws<BadInputException>(() => ObjectiveReads("/etc/passwd")).Message);
        }
        // Unconfined (the command line), an existing file is read and a missing one is named as missing.
        Assert.Contains("root", InputFile.ReadAllText("/etc/passwd", "direction file", 1 << 20));
        Assert.Contains("does not exist", Assert.Throws<BadInputException>(() => InputFile.ReadAllText("/etc/no-such-file", "direction file", 100)).Message);
    }

    /// <summary>Parses a direction objective on the embedded textures model.</summary>
    static void ObjectiveReads(string file)
    {
        using var net = Reverie.Training.Checkpoint.LoadEmbedded("textures");
        ObjectiveLanguage.Parse(net, $"direction:conv6@{file}");
    }

    /// <summary>A GIF whose screen is <paramref name="side"/> pixels square, holding one 1×1 frame: 35 bytes.</summary>
    internal static byte[] GifBomb(int side) =>
    [
        (byte)'G', (byte)'I', (byte)'F', (byte)'8', (byte)'9', (byte)'a', (byte)side, (byte)(side >> 8), (byte)side, (byte)(side >> 8), 0x80, 0, 0,
        0, 0, 0, 255, 255, 255, // two colours
        0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, // a 1x1 frame at the origin
        2, 2, 0x44, 0x01, 0, 0x3B,
    ];

    /// <summary>An Adam7-interlaced PNG of <paramref name="side"/>² pixels in one colour (zlib-compressed rows), made in memory.</summary>
    internal static byte[] InterlacedPng(int side) => GreyPng(side, interlaced: true);

    /// <summary>A PNG of <paramref name="side"/>² grey pixels in one colour, made in memory: rows of zeros compress to about a thousandth.</summary>
    internal static byte[] GreyPng(int side, bool interlaced)
    {
        static byte[] Chunk(string type, byte[] data)
        {
            var t = System.Text.Encoding.ASCII.GetBytes(type);
            var crc = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32([.. t, .. data]));
            return [.. BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(data.Length)), .. t, .. data, .. crc];
        }
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, side);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), side);
        ihdr[8] = 8; ihdr[9] = 0; ihdr[12] = (byte)(interlaced ? 1 : 0); // 8-bit grey, Adam7 or not
        var raw = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(raw, interlaced ? System.IO.Compression.CompressionLevel.SmallestSize : System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            // Interlaced: seven passes of rows, each a filter byte and grey zeros; the sizes matter less than the header here.
            // Plain: every row whole, a filter byte and the row's zeros.
            var row = new byte[interlaced ? side / 8 + 2 : side + 1];
            for (int i = 0; i < (interlaced ? side * 2 : side); i++) z.Write(row);
        }
        return [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", raw.ToArray()), .. Chunk("IEND", [])];
    }

    /// <summary>PNG's CRC-32 (ISO 3309, reflected 0xEDB88320).</summary>
    static uint Crc32(byte[] bytes)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFF;
    }

    [Fact]
    public void P05_ImagesThatCannotBeDecodedSmallAreRefusedFromTheirHeader()
    {
        long before = GC.GetTotalMemory(false);
        var gif = GifBomb(16000);
        Assert.True(gif.Length < 64);
        var e = Assert.Throws<BadInputException>(() => ImageIO.Decode(gif, "bomb.gif", maxSide: 448));
        Assert.Contains("16000x16000 pixels, and a GIF cannot be decoded at a reduced size", e.Message);
        var png = InterlacedPng(15000);
        Assert.True(png.Length < 2_000_000, $"{png.Length} bytes");
        e = Assert.Throws<BadInputException>(() => ImageIO.Decode(png, "bomb.png", maxSide: 448));
        Assert.Contains("an interlaced PNG cannot be decoded at a reduced size", e.Message);
        Assert.True(GC.GetTotalMemory(false) - before < 100_000_000, "the refusals allocated the pixels");
        // Below the budget such images are still read (a GIF's screen of 1000x1000).
        using var small = ImageIO.Decode(GifBomb(1000), "small.gif", maxSide: 448);
        Assert.Equal(new long[] { 1, 3, 1000, 1000 }, small.shape);
    }
}
