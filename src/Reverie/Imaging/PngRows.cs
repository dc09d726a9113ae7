using System.Buffers.Binary;
using System.IO.Compression;

namespace Reverie.Imaging;

/// <summary>
/// Reads a non-interlaced PNG one row at a time (PNG specification, ISO/IEC 15948: chunks, zlib
/// stream of filtered rows), so that an image can be shrunk while it is decoded without ever
/// holding it whole. Skia's PNG codec decodes only whole images; this covers 8- and 16-bit
/// grey, grey+alpha, RGB and RGBA, and 8-bit palettes; anything else is left to Skia.
/// </summary>
internal static class PngRows
{
    static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>
    /// Calls <paramref name="row"/> with each row as RGBA bytes (16-bit samples cut to their high
    /// byte), top to bottom; false when the file is a PNG this reader does not cover.
    /// </summary>
    public static bool TryRead(byte[] png, string what, Action<int, byte[]> row)
    {
        if (png.Length < 8 + 25 || !png.AsSpan(0, 8).SequenceEqual(Signature)) return false;
        int width = 0, height = 0, depth = 0, type = -1, interlace = 0;
        byte[]? palette = null, alpha = null;
        var idat = new List<(int Offset, int Length)>();
        int at = 8;
        while (at + 12 <= png.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            if (length < 0 || at + 12L + length > png.Length) throw Truncated(what);
            string name = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            int data = at + 8;
            switch (name)
            {
                case "IHDR" when length >= 13:
                    width = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(data));
                    height = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(data + 4));
                    depth = png[data + 8]; type = png[data + 9]; interlace = png[data + 12];
                    break;
                case "PLTE": palette = png.AsSpan(data, length).ToArray(); break;
                case "tRNS": alpha = png.AsSpan(data, length).ToArray(); break;
                case "IDAT": idat.Add((data, length)); break;
            }
            at = data + length + 4;
            if (name == "IEND") break;
        }
        int channels = type switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        bool covered = channels > 0 && interlace == 0 && width > 0 && height > 0
            && (type == 3 ? depth == 8 && palette is not null : depth is 8 or 16);
        if (!covered || idat.Count == 0) return false;
        int bytesPerSample = depth / 8, pixelBytes = channels * bytesPerSample;
        long stride = (long)width * pixelBytes;
        if (stride > int.MaxValue / 2) return false;
        var prev = new byte[stride];
        var cur = new byte[stride];
        var rgba = new byte[(long)width * 4];
        using var z = new ZLibStream(new ChunkStream(png, idat), CompressionMode.Decompress);
        for (int y = 0; y < height; y++)
        {
            int filter = z.ReadByte();
            if (filter < 0) throw Truncated(what);
            z.ReadExactly(cur);
            Unfilter(filter, cur, prev, pixelBytes, what);
            for (int x = 0; x < width; x++)
            {
                int s = x * pixelBytes, o = x * 4;
                byte Sample(int k) => cur[s + k * bytesPerSample]; // the high byte of a 16-bit sample
                switch (type)
                {
                    case 0: rgba[o] = rgba[o + 1] = rgba[o + 2] = Sample(0); rgba[o + 3] = 255; break;
                    case 4: rgba[o] = rgba[o + 1] = rgba[o + 2] = Sample(0); rgba[o + 3] = Sample(1); break;
                    case 2: rgba[o] = Sample(0); rgba[o + 1] = Sample(1); rgba[o + 2] = Sample(2); rgba[o + 3] = 255; break;
                    case 6: rgba[o] = Sample(0); rgba[o + 1] = Sample(1); rgba[o + 2] = Sample(2); rgba[o + 3] = Sample(3); break;
                    default:
                        int i = cur[s];
                        if (3 * i + 2 >= palette!.Length) throw new BadInputException($"'{what}' has a palette index out of range; the file is corrupt.");
                        rgba[o] = palette[3 * i]; rgba[o + 1] = palette[3 * i + 1]; rgba[o + 2] = palette[3 * i + 2];
                        rgba[o + 3] = alpha is not null && i < alpha.Length ? alpha[i] : (byte)255;
                        break;
                }
            }
            row(y, rgba);
            (prev, cur) = (cur, prev);
        }
        return true;
    }

    static void Unfilter(int filter, byte[] cur, byte[] prev, int bpp, string what)
    {
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < cur.Length; i++) cur[i] += cur[i - bpp]; break;
            case 2: for (int i = 0; i < cur.Length; i++) cur[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < cur.Length; i++) cur[i] += (byte)(((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < cur.Length; i++)
                {
                    int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    cur[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default: throw new BadInputException($"'{what}' has a row with an unknown PNG filter ({filter}); the file is corrupt.");
        }
    }

    static BadInputException Truncated(string what) => new($"'{what}' is truncated; the file is incomplete or corrupt.");

    /// <summary>The IDAT chunks' data, read as one stream.</summary>
    sealed class ChunkStream(byte[] png, List<(int Offset, int Length)> chunks) : Stream
    {
        int _chunk, _pos;
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            while (_chunk < chunks.Count && _pos == chunks[_chunk].Length) { _chunk++; _pos = 0; }
            if (_chunk == chunks.Count) return 0;
            var (o, l) = chunks[_chunk];
            int n = Math.Min(buffer.Length, l - _pos);
            png.AsSpan(o + _pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
