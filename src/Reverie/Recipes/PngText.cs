using System.Buffers.Binary;
using System.Text;

namespace Reverie.Recipes;

/// <summary>Reads and writes PNG tEXt chunks (keyword, NUL, Latin-1 text), which carry Reverie's recipes inside its pictures.</summary>
internal static class PngText
{
    static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    static readonly uint[] CrcTable = BuildCrcTable();

    static uint[] BuildCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    internal static uint Crc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>Returns a copy of <paramref name="png"/> with a tEXt chunk inserted after IHDR.</summary>
    public static byte[] Insert(byte[] png, string keyword, string text)
    {
        if (!png.AsSpan(0, 8).SequenceEqual(Signature)) throw new ArgumentException("Not a PNG stream.");
        if (keyword.Length is 0 or > 79) throw new ArgumentException("A PNG keyword has 1 to 79 characters.");
        var latin1 = Encoding.Latin1;
        var data = latin1.GetBytes(keyword).Append((byte)0).Concat(latin1.GetBytes(text)).ToArray();
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes("tEXt").CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc(chunk.AsSpan(4, 4 + data.Length)));
        int ihdrEnd = 8 + 12 + (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(8));
        return [.. png.AsSpan(0, ihdrEnd), .. chunk, .. png.AsSpan(ihdrEnd)];
    }

    /// <summary>All tEXt chunks of a PNG stream, keyword to text; an invalid stream gives an empty result.</summary>
    public static Dictionary<string, string> Read(byte[] png)
    {
        var result = new Dictionary<string, string>();
        if (png.Length < 8 || !png.AsSpan(0, 8).SequenceEqual(Signature)) return result;
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (len > png.Length - pos - 12) break;
            string type = Encoding.ASCII.GetString(png, pos + 4, 4);
            if (type == "tEXt")
            {
                var data = png.AsSpan(pos + 8, (int)len);
                int nul = data.IndexOf((byte)0);
                if (nul > 0) result[Encoding.Latin1.GetString(data[..nul])] = Encoding.Latin1.GetString(data[(nul + 1)..]);
            }
            if (type == "IEND") break;
            pos += 12 + (int)len;
        }
        return result;
    }
}
