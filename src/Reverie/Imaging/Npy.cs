using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace Reverie.Imaging;

/// <summary>
/// NumPy's .npy format (version 1.0) for float32 arrays, so that maps and features open with
/// <c>numpy.load</c>: the magic <c>\x93NUMPY</c>, the version, a little-endian header length,
/// and a Python-literal header padded with spaces to a multiple of 64 bytes, then the data in C order.
/// </summary>
internal static class Npy
{
    /// <summary>
    /// NumPy's .npz: a zip archive with one NAME.npy per array (stored, not compressed), which
    /// <c>numpy.load(path)[NAME]</c> reads.
    /// </summary>
    public static byte[] EncodeArchive(IEnumerable<(string Name, byte[] Npy)> arrays)
    {
        using var stream = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(stream, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, npy) in arrays)
            {
                using var entry = zip.CreateEntry(name + ".npy", System.IO.Compression.CompressionLevel.NoCompression).Open();
                entry.Write(npy);
            }
        return stream.ToArray();
    }

    /// <summary>The file's bytes for a float32 tensor of any shape.</summary>
    public static byte[] Encode(Tensor values)
    {
        var t = values.detach().to(CPU).to(ScalarType.Float32).contiguous();
        string shape = t.dim() == 1 ? $"({t.shape[0]},)" : "(" + string.Join(", ", t.shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")";
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        int unpadded = 10 + header.Length + 1;
        header += new string(' ', (64 - unpadded % 64) % 64) + "\n";
        var data = t.data<float>().ToArray();
        using var stream = new MemoryStream();
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        var bytes = new byte[data.Length * 4];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Reverie writes .npy files on little-endian machines only.");
        stream.Write(bytes);
        return stream.ToArray();
    }
}
