namespace Reverie.Video;

/// <summary>
/// Writes animated GIF89a files (GIF spec, version 89a): one global palette of up to 256 colours
/// chosen by popularity over 15-bit colours of all frames, LZW-compressed frames, looping forever.
/// </summary>
internal static class GifWriter
{
    /// <summary>Encodes RGBA frames of one size as a looping animation with the given frame delay.</summary>
    public static byte[] Encode(IReadOnlyList<byte[]> rgbaFrames, int width, int height, int delayMs = 80)
    {
        if (rgbaFrames.Count == 0) throw new ArgumentException("No frames.");
        if (width > 65535 || height > 65535) throw new BadInputException("A GIF is at most 65535 pixels on a side.");
        var counts = new int[32768];
        foreach (var f in rgbaFrames)
            for (int i = 0; i < width * height; i++) counts[Key(f, i)]++;
        var palette = Enumerable.Range(0, 32768).Where(k => counts[k] > 0).OrderByDescending(k => counts[k]).Take(256).ToArray();
        var lut = new byte[32768];
        for (int k = 0; k < 32768; k++)
        {
            int best = 0, bestD = int.MaxValue;
            for (int p = 0; p < palette.Length; p++)
            {
                int d = Dist(k, palette[p]);
                if (d < bestD) { bestD = d; best = p; if (d == 0) break; }
            }
            lut[k] = (byte)best;
        }
        using var ms = new MemoryStream();
        void U16(int v) { ms.WriteByte((byte)(v & 0xFF)); ms.WriteByte((byte)(v >> 8)); }
        ms.Write("GIF89a"u8);
        U16(width); U16(height);
        ms.WriteByte(0xF7); // global colour table, 8 bits per channel, 256 entries
        ms.WriteByte(0); ms.WriteByte(0);
        for (int p = 0; p < 256; p++)
        {
            int k = p < palette.Length ? palette[p] : 0;
            ms.WriteByte((byte)(((k >> 10) & 31) * 255 / 31));
            ms.WriteByte((byte)(((k >> 5) & 31) * 255 / 31));
            ms.WriteByte((byte)((k & 31) * 255 / 31));
        }
        ms.Write([0x21, 0xFF, 0x0B]); ms.Write("NETSCAPE2.0"u8); ms.Write([0x03, 0x01, 0x00, 0x00, 0x00]); // loop forever
        foreach (var f in rgbaFrames)
        {
            ms.Write([0x21, 0xF9, 0x04, 0x00]); U16(Math.Max(1, delayMs / 10)); ms.Write([0x00, 0x00]);
            ms.WriteByte(0x2C); U16(0); U16(0); U16(width); U16(height); ms.WriteByte(0);
            var indices = new byte[width * height];
            for (int i = 0; i < indices.Length; i++) indices[i] = lut[Key(f, i)];
            Lzw(ms, indices, 8);
        }
        ms.WriteByte(0x3B);
        return ms.ToArray();
    }

    static int Key(byte[] rgba, int i) => ((rgba[4 * i] >> 3) << 10) | ((rgba[4 * i + 1] >> 3) << 5) | (rgba[4 * i + 2] >> 3);

    static int Dist(int a, int b)
    {
        int dr = ((a >> 10) & 31) - ((b >> 10) & 31), dg = ((a >> 5) & 31) - ((b >> 5) & 31), db = (a & 31) - (b & 31);
        return 3 * dr * dr + 4 * dg * dg + 2 * db * db;
    }

    /// <summary>GIF's variable-width LZW, in sub-blocks of at most 255 bytes.</summary>
    static void Lzw(Stream s, byte[] data, int minCodeSize)
    {
        s.WriteByte((byte)minCodeSize);
        int clear = 1 << minCodeSize, end = clear + 1;
        var block = new List<byte>(255);
        int bitBuf = 0, bitCount = 0;
        void Flush(bool all)
        {
            while (block.Count >= 255 || (all && block.Count > 0))
            {
                int n = Math.Min(255, block.Count);
                s.WriteByte((byte)n);
                for (int i = 0; i < n; i++) s.WriteByte(block[i]);
                block.RemoveRange(0, n);
            }
        }
        int codeSize = minCodeSize + 1;
        void Emit(int code)
        {
            bitBuf |= code << bitCount;
            bitCount += codeSize;
            while (bitCount >= 8) { block.Add((byte)(bitBuf & 0xFF)); bitBuf >>= 8; bitCount -= 8; }
            if (block.Count >= 255) Flush(false);
        }
        var dict = new Dictionary<int, int>();
        int next = end + 1;
        Emit(clear);
        int prefix = data.Length > 0 ? data[0] : 0;
        for (int i = 1; i < data.Length; i++)
        {
            int key = (prefix << 8) | data[i];
            if (dict.TryGetValue(key, out int code)) { prefix = code; continue; }
            Emit(prefix);
            if (next < 4096)
            {
                dict[key] = next++;
                if (next > (1 << codeSize) && codeSize < 12) codeSize++;
            }
            else
            {
                Emit(clear);
                dict.Clear();
                next = end + 1;
                codeSize = minCodeSize + 1;
            }
            prefix = data[i];
        }
        Emit(prefix);
        Emit(end);
        if (bitCount > 0) block.Add((byte)(bitBuf & 0xFF));
        Flush(true);
        s.WriteByte(0);
    }
}
