using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Reverie.Imaging;
using static TorchSharp.torch;

namespace Reverie.Models.Torch;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and [begin, end) byte offsets into the data that follows, then the data.
/// Tensors are streamed straight into (and out of) tensor memory, so no size limit applies per
/// tensor beyond the machine's. Floating-point tensors load as float32.
/// </summary>
internal static class SafeTensors
{
    const long MaxHeader = 100_000_000;

    static (ScalarType Type, int Size) DType(string name) => name switch
    {
        "F32" => (ScalarType.Float32, 4),
        "F16" => (ScalarType.Float16, 2),
        "BF16" => (ScalarType.BFloat16, 2),
        "F64" => (ScalarType.Float64, 8),
        "I64" => (ScalarType.Int64, 8),
        "I32" => (ScalarType.Int32, 4),
        "I16" => (ScalarType.Int16, 2),
        "I8" => (ScalarType.Int8, 1),
        "U8" => (ScalarType.Byte, 1),
        "BOOL" => (ScalarType.Bool, 1),
        _ => throw new BadInputException($"Unsupported safetensors dtype '{BadInputException.Shown(name)}'."),
    };

    static string Name(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16", ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64", ScalarType.Int32 => "I32", ScalarType.Int16 => "I16", ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8", ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"Cannot store {t} in safetensors."),
    };

    /// <summary>Reads every tensor of a .safetensors file, by name.</summary>
    public static Dictionary<string, Tensor> Load(string path) => Load(path, out _);

    /// <summary>Reads every tensor of a .safetensors file, and its string metadata.</summary>
    public static Dictionary<string, Tensor> Load(string path, out Dictionary<string, string> metadata)
    {
        using var fs = Imaging.InputFile.OpenRead(path, "weights file", Registry.ModelRegistry.MaxWeightsBytes, confined: false);
        return Load(fs, path, out metadata);
    }

    /// <summary>Reads every tensor of a seekable safetensors stream; <paramref name="path"/> names it in errors.</summary>
    public static Dictionary<string, Tensor> Load(Stream fs, string path, out Dictionary<string, string> metadata)
    {
        string Bad(string why) => $"'{path}' is not a valid safetensors file: {why}.";
        var lenBytes = new byte[8];
        if (fs.Read(lenBytes, 0, 8) != 8) throw new BadInputException(Bad("it is shorter than its 8-byte header length"));
        long headerLen = BitConverter.ToInt64(lenBytes);
        if (headerLen <= 0 || headerLen > MaxHeader || 8 + headerLen > fs.Length) throw new BadInputException(Bad($"its header length {headerLen} does not fit the file"));
        var header = new byte[headerLen];
        fs.ReadExactly(header);
        JsonObject root;
        try { root = JsonNode.Parse(Encoding.UTF8.GetString(header))?.AsObject() ?? throw new JsonException("empty"); }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException) { throw new BadInputException(Bad("its header is not a JSON object")); }
        long dataStart = 8 + headerLen, dataLen = fs.Length - dataStart;
        metadata = new Dictionary<string, string>();
        var result = new Dictionary<string, Tensor>();
        var spans = new List<(long Begin, long End, string Name)>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta) foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            try
            {
                var o = node!.AsObject();
                var (type, size) = DType(o["dtype"]!.GetValue<string>());
                long[] shape = o["shape"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();
                var offsets = o["data_offsets"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray();
                if (shape.Any(d => d < 0) || offsets.Length != 2) throw new BadInputException(Bad($"tensor '{BadInputException.Shown(name)}' has a bad shape or offsets"));
                long count = shape.Aggregate(1L, (a, b) => checked(a * b));
                long begin = offsets[0], end = offsets[1];
                if (begin < 0 || end < begin || end > dataLen || end - begin != checked(count * size))
                    throw new BadInputException(Bad($"tensor '{BadInputException.Shown(name)}' has offsets [{begin}, {end}) that do not match its {count} {type} values or the file"));
                spans.Add((begin, end, name));
                var t = empty(shape, type);
                fs.Seek(dataStart + begin, SeekOrigin.Begin);
                Fill(fs, t, end - begin);
                result[name] = t.is_floating_point() && type != ScalarType.Float32 ? t.to(ScalarType.Float32) : t;
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or NullReferenceException or OverflowException)
            {
                throw new BadInputException(Bad($"tensor '{BadInputException.Shown(name)}' has a malformed entry"));
            }
        }
        spans.Sort();
        for (int i = 1; i < spans.Count; i++)
            if (spans[i].Begin < spans[i - 1].End) throw new BadInputException(Bad($"tensors '{BadInputException.Shown(spans[i - 1].Name)}' and '{BadInputException.Shown(spans[i].Name)}' overlap"));
        return result;
    }

    /// <summary>Reads a tensor's bytes from the stream, in slices of at most 256 MB of its memory (so no 2 GB limit applies).</summary>
    static void Fill(Stream s, Tensor t, long bytes)
    {
        foreach (var slice in Slices(t))
        {
            Span<byte> target = slice.bytes;
            s.ReadExactly(target);
        }
    }

    /// <summary>Views of a contiguous tensor's memory, each at most 256 MB.</summary>
    static IEnumerable<Tensor> Slices(Tensor t)
    {
        var flat = t.view(-1);
        long per = Math.Max(1, (256L << 20) / Math.Max(1, t.element_size()));
        for (long start = 0; start < flat.numel(); start += per)
            yield return flat.narrow(0, start, Math.Min(per, flat.numel() - start));
    }

    /// <summary>Writes tensors (any supported dtype, any layout) to a .safetensors file, through a temporary file and a rename.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 }) header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        var ordered = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, T: kv.Value.detach().cpu().contiguous())).ToList();
        long offset = 0;
        foreach (var (name, t) in ordered)
        {
            long n = t.numel() * t.element_size();
            header[name] = new JsonObject
            {
                ["dtype"] = Name(t.dtype), ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + n),
            };
            offset += n;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        AtomicFile.Write(path, s =>
        {
            s.Write(BitConverter.GetBytes((long)(json.Length + pad)));
            s.Write(json);
            for (int i = 0; i < pad; i++) s.WriteByte((byte)' ');
            foreach (var (_, t) in ordered)
                foreach (var slice in Slices(t))
                    s.Write(slice.bytes);
        });
    }
}
