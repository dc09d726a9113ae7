using System.IO.Compression;
using System.Numerics;
using static TorchSharp.torch;

namespace Reverie.Models.Torch;

/// <summary>
/// Reads PyTorch <c>torch.save</c> files holding a state_dict (or a checkpoint dictionary with
/// one): the zip archive (data.pkl plus one entry per storage) and the legacy format (a series
/// of pickles followed by the raw storages). The pickles go through <see cref="SafeUnpickler"/>:
/// only the globals a state_dict needs are accepted, and nothing in the file is ever executed.
/// Floating-point tensors (float32, float16, bfloat16, float64) load as float32.
/// </summary>
internal static class TorchFile
{
    /// <summary>The globals a state_dict pickle may name.</summary>
    public static readonly string[] AllowedGlobals =
    [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage", "torch.BoolStorage",
    ];

    static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");

    static (ScalarType Type, int Size) StorageType(PickleGlobal g) => g.Name switch
    {
        "FloatStorage" => (ScalarType.Float32, 4),
        "HalfStorage" => (ScalarType.Float16, 2),
        "BFloat16Storage" => (ScalarType.BFloat16, 2),
        "DoubleStorage" => (ScalarType.Float64, 8),
        "LongStorage" => (ScalarType.Int64, 8),
        "IntStorage" => (ScalarType.Int32, 4),
        "ShortStorage" => (ScalarType.Int16, 2),
        "CharStorage" => (ScalarType.Int8, 1),
        "ByteStorage" => (ScalarType.Byte, 1),
        "BoolStorage" => (ScalarType.Bool, 1),
        _ => throw new BadInputException($"Unsupported storage type '{BadInputException.Shown(g)}'."),
    };

    /// <summary>Loads the tensors of a PyTorch file, by their state_dict names.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        byte[] bytes = Imaging.InputFile.ReadAllBytes(path, "weights file", Array.MaxLength, confined: false);
        try
        {
            return bytes.Length >= 4 && bytes[0] == 'P' && bytes[1] == 'K' ? LoadZip(bytes, path) : LoadLegacy(bytes, path);
        }
        catch (BadInputException) { throw; }
        catch (Exception ex) when (ex is InvalidDataException or ArgumentException or InvalidCastException or IndexOutOfRangeException or OverflowException)
        {
            throw new BadInputException($"'{path}' is not a readable PyTorch weights file ({ex.Message}).");
        }
    }

    static Dictionary<string, Tensor> LoadZip(byte[] bytes, string path)
    {
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl")
            ?? throw new BadInputException($"'{path}' is a zip file but not a PyTorch archive (no data.pkl).");
        string root = pkl.FullName[..^"data.pkl".Length];
        if (zip.GetEntry(root + "byteorder") is { } bo && new StreamReader(bo.Open()).ReadToEnd().Trim() != "little")
            throw new BadInputException($"'{path}' stores big-endian tensors, which Reverie does not read.");
        var storages = new Dictionary<string, Tensor>();
        object? Persistent(object? id)
        {
            if (id is not object?[] { Length: >= 5 } t || t[0] as string != "storage" || t[1] is not PickleGlobal type || t[2] is not string key)
                throw new BadInputException($"'{path}' has a persistent reference that is not a tensor storage.");
            if (storages.TryGetValue(key, out var s)) return s;
            var entry = zip.GetEntry(root + "data/" + key) ?? throw new BadInputException($"'{path}' lacks storage '{BadInputException.Shown(key)}'.");
            var (dtype, size) = StorageType(type);
            using var ms = new MemoryStream();
            using (var es = entry.Open()) es.CopyTo(ms);
            var raw = ms.ToArray();
            if (raw.Length % size != 0) throw new BadInputException($"'{path}': storage '{BadInputException.Shown(key)}' has {raw.Length} bytes, not a whole number of {dtype} values.");
            return storages[key] = FromBytes(raw, dtype);
        }
        var obj = new SafeUnpickler(Read(pkl), AllowedGlobals).Load(Persistent);
        return Collect(obj, path);
    }

    static byte[] Read(ZipArchiveEntry e)
    {
        using var ms = new MemoryStream();
        using (var s = e.Open()) s.CopyTo(ms);
        return ms.ToArray();
    }

    static Dictionary<string, Tensor> LoadLegacy(byte[] bytes, string path)
    {
        int pos = 0;
        object? Next(Func<object?, object?>? persistent = null)
        {
            var u = new SafeUnpickler(bytes, AllowedGlobals, pos);
            var o = u.Load(persistent);
            pos = u.Position;
            return o;
        }
        object? magic;
        try { magic = Next(); }
        catch (BadInputException) { throw new BadInputException($"'{path}' is not a PyTorch weights file (neither a zip archive nor the legacy format)."); }
        if (magic is not BigInteger m || m != LegacyMagic) throw new BadInputException($"'{path}' is not a PyTorch weights file (wrong magic number).");
        if (Next() is not long protocol || protocol != 1001) throw new BadInputException($"'{path}' has an unknown legacy protocol version.");
        Next(); // system info
        var pending = new Dictionary<string, (ScalarType Type, int Size)>();
        object? Persistent(object? id)
        {
            if (id is not object?[] { Length: >= 5 } t || t[0] as string != "storage" || t[1] is not PickleGlobal type || t[2] is not string key)
                throw new BadInputException($"'{path}' has a persistent reference that is not a tensor storage.");
            var (dtype, size) = StorageType(type);
            pending.TryAdd(key, (dtype, size));
            if (t.Length > 5 && t[5] is object?[] { Length: 3 }) throw new BadInputException($"'{path}' uses storage views, which Reverie does not read.");
            return new LegacyStorage(key);
        }
        var obj = Next(Persistent);
        if (Next() is not List<object?> keys) throw new BadInputException($"'{path}' lacks the list of storages.");
        var loaded = new Dictionary<string, Tensor>();
        foreach (var k in keys.Select(o => o as string ?? throw new BadInputException($"'{path}' has a storage key that is not text.")))
        {
            if (!pending.TryGetValue(k, out var info)) throw new BadInputException($"'{path}' stores an unreferenced storage '{BadInputException.Shown(k)}'.");
            if (pos + 8 > bytes.Length) throw new BadInputException($"'{path}' ends before storage '{BadInputException.Shown(k)}'.");
            long count = BitConverter.ToInt64(bytes, pos);
            pos += 8;
            long n = count * info.Size;
            if (count < 0 || n > bytes.Length - pos) throw new BadInputException($"'{path}' ends inside storage '{BadInputException.Shown(k)}'.");
            loaded[k] = FromBytes(bytes.AsSpan(pos, (int)n).ToArray(), info.Type);
            pos += (int)n;
        }
        return Collect(Resolve(obj, loaded, path), path);
    }

    sealed record LegacyStorage(string Key);

    static object? Resolve(object? o, Dictionary<string, Tensor> loaded, string path) => o switch
    {
        LegacyStorage s => loaded.TryGetValue(s.Key, out var t) ? t : throw new BadInputException($"'{path}' lacks the data of storage '{BadInputException.Shown(s.Key)}'."),
        PickleCall c => new PickleCall(c.Callable, c.Args.Select(a => Resolve(a, loaded, path)).ToArray()) { State = c.State }.WithItems(c.Items.ToDictionary(kv => kv.Key, kv => Resolve(kv.Value, loaded, path))),
        Dictionary<object, object?> d => d.ToDictionary(kv => kv.Key, kv => Resolve(kv.Value, loaded, path)),
        List<object?> l => l.Select(x => Resolve(x, loaded, path)).ToList(),
        object?[] a => a.Select(x => Resolve(x, loaded, path)).ToArray(),
        _ => o,
    };

    static PickleCall WithItems(this PickleCall c, Dictionary<object, object?> items)
    {
        foreach (var kv in items) c.Items[kv.Key] = kv.Value;
        return c;
    }

    /// <summary>A 1-D tensor of a storage's little-endian values; float16 and bfloat16 are widened to float32 here.</summary>
    static Tensor FromBytes(byte[] raw, ScalarType dtype)
    {
        var span = raw.AsSpan();
        switch (dtype)
        {
            case ScalarType.Float32: return tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(span).ToArray());
            case ScalarType.Float64: return tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(span).ToArray());
            case ScalarType.Float16:
            {
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(span);
                var f = new float[h.Length];
                for (int i = 0; i < f.Length; i++) f[i] = (float)h[i];
                return tensor(f);
            }
            case ScalarType.BFloat16:
            {
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(span);
                var f = new float[b.Length];
                for (int i = 0; i < f.Length; i++) f[i] = BitConverter.Int32BitsToSingle(b[i] << 16);
                return tensor(f);
            }
            case ScalarType.Int64: return tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(span).ToArray());
            case ScalarType.Int32: return tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(span).ToArray());
            case ScalarType.Int16: return tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(span).ToArray());
            case ScalarType.Int8: return tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(span).ToArray());
            case ScalarType.Bool: return tensor(raw.Select(v => v != 0).ToArray());
            default: return tensor(raw);
        }
    }

    /// <summary>Turns the unpickled object into named float32 (or integer) tensors.</summary>
    static Dictionary<string, Tensor> Collect(object? obj, string path)
    {
        var result = new Dictionary<string, Tensor>();
        void Walk(string prefix, object? o)
        {
            switch (o)
            {
                case PickleCall { Callable.Name: "OrderedDict" } od:
                    foreach (var kv in od.Items) Walk(Join(prefix, kv.Key), kv.Value);
                    break;
                case Dictionary<object, object?> d:
                    foreach (var kv in d) Walk(Join(prefix, kv.Key), kv.Value);
                    break;
                case PickleCall { Callable.Name: "_rebuild_tensor_v2" or "_rebuild_parameter" } t:
                    result[prefix] = Rebuild(t, path);
                    break;
                default:
                    break; // numbers, strings, metadata: not weights
            }
        }
        Walk("", obj);
        if (result.Count == 0) throw new BadInputException($"'{path}' holds no tensors.");
        return result;
    }

    static string Join(string prefix, object key) => prefix.Length == 0 ? key.ToString()! : $"{prefix}.{key}";

    static Tensor Rebuild(PickleCall call, string path)
    {
        if (call.Callable.Name == "_rebuild_parameter")
            return call.Args.Length > 0 && call.Args[0] is PickleCall inner ? Rebuild(inner, path) : throw new BadInputException($"'{path}': a parameter without data.");
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (call.Args is not [Tensor storage, long offset, object?[] size, object?[] stride, ..])
            throw new BadInputException($"'{path}': a tensor record has unexpected arguments.");
        long[] sz = size.Select(x => x is long v ? v : throw new BadInputException($"'{path}': a tensor size is not an integer.")).ToArray();
        long[] st = stride.Select(x => x is long v ? v : throw new BadInputException($"'{path}': a tensor stride is not an integer.")).ToArray();
        if (sz.Length != st.Length || sz.Any(v => v < 0) || st.Any(v => v < 0) || offset < 0)
            throw new BadInputException($"'{path}': a tensor has an invalid size or stride.");
        long last = offset + sz.Select((v, i) => v == 0 ? -1 : (v - 1) * st[i]).Sum();
        if (sz.Any(v => v == 0)) last = offset - 1;
        if (last >= storage.numel()) throw new BadInputException($"'{path}': a tensor reaches past the end of its storage.");
        var t = storage.as_strided(sz, st, offset).clone();
        return t.is_floating_point() && t.dtype != ScalarType.Float32 ? t.to(ScalarType.Float32) : t;
    }
}

/// <summary>Writes a state_dict as a PyTorch zip archive (what <c>torch.save</c> writes), loadable by <c>torch.load(..., weights_only=True)</c>.</summary>
internal static class TorchFileWriter
{
    static string StorageName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "FloatStorage", ScalarType.Float64 => "DoubleStorage", ScalarType.Float16 => "HalfStorage", ScalarType.BFloat16 => "BFloat16Storage",
        ScalarType.Int64 => "LongStorage", ScalarType.Int32 => "IntStorage", ScalarType.Int16 => "ShortStorage", ScalarType.Int8 => "CharStorage",
        ScalarType.Byte => "ByteStorage", ScalarType.Bool => "BoolStorage",
        _ => throw new ArgumentException($"Cannot store {t} in a PyTorch file."),
    };

    /// <summary>Writes <paramref name="tensors"/> (in name order) to <paramref name="path"/> through a temporary file and a rename.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var ordered = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, T: kv.Value.detach().cpu().contiguous())).ToList();
        var p = new MemoryStream();
        void Op(char c) => p.WriteByte((byte)c);
        void Str(string s) { var b = System.Text.Encoding.UTF8.GetBytes(s); Op('X'); p.Write(BitConverter.GetBytes(b.Length)); p.Write(b); }
        void Int(long v)
        {
            if (v >= int.MinValue && v <= int.MaxValue) { Op('J'); p.Write(BitConverter.GetBytes((int)v)); }
            else { p.WriteByte(0x8a); p.WriteByte(8); p.Write(BitConverter.GetBytes(v)); }
        }
        void Global(string module, string name) { Op('c'); p.Write(System.Text.Encoding.ASCII.GetBytes($"{module}\n{name}\n")); }
        void EmptyOrderedDict() { Global("collections", "OrderedDict"); Op(')'); Op('R'); }
        p.WriteByte(0x80); p.WriteByte(2);
        EmptyOrderedDict();
        Op('(');
        for (int i = 0; i < ordered.Count; i++)
        {
            var (name, t) = ordered[i];
            Str(name);
            Global("torch._utils", "_rebuild_tensor_v2");
            Op('(');
            Op('('); Str("storage"); Global("torch", StorageName(t.dtype)); Str(i.ToString(System.Globalization.CultureInfo.InvariantCulture)); Str("cpu"); Int(t.numel()); Op('t');
            Op('Q');
            Int(0);
            Op('('); foreach (var d in t.shape) Int(d); Op('t');
            Op('('); foreach (var s in t.stride()) Int(s); Op('t');
            p.WriteByte(0x89);
            EmptyOrderedDict();
            Op('t');
            Op('R');
        }
        Op('u');
        Op('.');
        Imaging.AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            void Entry(string name, ReadOnlySpan<byte> data)
            {
                using var e = zip.CreateEntry("archive/" + name, CompressionLevel.NoCompression).Open();
                e.Write(data);
            }
            Entry("data.pkl", p.ToArray());
            Entry("byteorder", "little"u8);
            for (int i = 0; i < ordered.Count; i++) Entry($"data/{i}", ordered[i].T.bytes);
            Entry("version", "3\n"u8);
        });
    }
}
