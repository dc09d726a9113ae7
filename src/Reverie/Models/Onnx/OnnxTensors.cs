using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Reverie.Models.Onnx.Proto;
using static TorchSharp.torch;

namespace Reverie.Models.Onnx;

/// <summary>Converts ONNX TensorProto messages to TorchSharp tensors. Float16 and bfloat16 become float32.</summary>
internal static class OnnxTensors
{
    /// <summary>ONNX element type codes (TensorProto.DataType).</summary>
    internal const int Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8, Bool = 9,
        Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, BFloat16 = 16;

    internal static string TypeName(int t) => t switch
    {
        Float => "float32", UInt8 => "uint8", Int8 => "int8", UInt16 => "uint16", Int16 => "int16", Int32 => "int32",
        Int64 => "int64", String => "string", Bool => "bool", Float16 => "float16", Double => "float64",
        UInt32 => "uint32", UInt64 => "uint64", BFloat16 => "bfloat16", _ => $"type {t}",
    };

    static int ElementSize(int t) => t switch
    {
        Float or Int32 or UInt32 => 4, UInt8 or Int8 or Bool => 1, UInt16 or Int16 or Float16 or BFloat16 => 2,
        Int64 or Double or UInt64 => 8, _ => 0,
    };

    /// <summary>Reads a tensor; <paramref name="baseDir"/> resolves external data files.</summary>
    public static Tensor ToTensor(TensorProto p, string? baseDir)
    {
        // TorchSharp's tensor(T[]) shares the managed array's memory; copy into memory libtorch owns.
        using var shared = ReadTensor(p, baseDir);
        return shared.clone();
    }

    static Tensor ReadTensor(TensorProto p, string? baseDir)
    {
        long[] dims = p.Dims.ToArray();
        foreach (var d in dims)
            if (d < 0) throw new BadInputException($"Tensor '{p.Name}' has a negative dimension.");
        long n = 1;
        foreach (var d in dims) n = checked(n * d);
        int esize = ElementSize(p.DataType);
        if (esize == 0) throw new BadInputException($"Tensor '{p.Name}' has element type {TypeName(p.DataType)}, which Reverie does not read.");

        ReadOnlyMemory<byte> raw = default;
        bool haveRaw = false;
        if (p.DataLocation == TensorProto.Types.DataLocation.External)
        {
            raw = ReadExternal(p, baseDir, n * esize);
            haveRaw = true;
        }
        else if (!p.RawData.IsEmpty || (n == 0 && TypedCount(p) == 0))
        {
            raw = p.RawData.Memory;
            haveRaw = true;
        }

        if (haveRaw)
        {
            if (raw.Length != n * esize)
                throw new BadInputException($"Tensor '{p.Name}' holds {raw.Length} bytes but its shape [{string.Join(",", dims)}] of {TypeName(p.DataType)} needs {n * esize}.");
            return FromRaw(raw.Span, p.DataType, dims);
        }

        int count = TypedCount(p);
        if (count != n)
            throw new BadInputException($"Tensor '{p.Name}' holds {count} values but its shape [{string.Join(",", dims)}] needs {n}.");
        switch (p.DataType)
        {
            case Float: return tensor(p.FloatData.ToArray(), dims);
            case Double: return tensor(p.DoubleData.ToArray(), dims);
            case Int64: return tensor(p.Int64Data.ToArray(), dims);
            case UInt64: return tensor(p.Uint64Data.Select(v => (long)v).ToArray(), dims);
            case UInt32: return tensor(p.Uint64Data.Select(v => (long)v).ToArray(), dims);
            case Int32: return tensor(p.Int32Data.ToArray(), dims);
            case Int16: return tensor(p.Int32Data.Select(v => (short)v).ToArray(), dims);
            case Int8: return tensor(p.Int32Data.Select(v => (sbyte)v).ToArray(), dims);
            case UInt8: return tensor(p.Int32Data.Select(v => (byte)v).ToArray(), dims);
            case UInt16: return tensor(p.Int32Data.Select(v => (int)(ushort)v).ToArray(), dims);
            case Bool: return tensor(p.Int32Data.Select(v => v != 0).ToArray(), dims);
            case Float16: return tensor(p.Int32Data.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToArray(), dims);
            case BFloat16: return tensor(p.Int32Data.Select(v => BitConverter.Int32BitsToSingle(v << 16)).ToArray(), dims);
        }
        throw new BadInputException($"Tensor '{p.Name}' has element type {TypeName(p.DataType)}, which Reverie does not read.");
    }

    static int TypedCount(TensorProto p) => p.DataType switch
    {
        Float => p.FloatData.Count,
        Double => p.DoubleData.Count,
        Int64 => p.Int64Data.Count,
        UInt64 or UInt32 => p.Uint64Data.Count,
        _ => p.Int32Data.Count,
    };

    static Tensor FromRaw(ReadOnlySpan<byte> raw, int type, long[] dims)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Reverie reads ONNX raw data on little-endian machines only.");
        switch (type)
        {
            case Float: return tensor(MemoryMarshal.Cast<byte, float>(raw).ToArray(), dims);
            case Double: return tensor(MemoryMarshal.Cast<byte, double>(raw).ToArray(), dims);
            case Int64: return tensor(MemoryMarshal.Cast<byte, long>(raw).ToArray(), dims);
            case UInt64: return tensor(MemoryMarshal.Cast<byte, ulong>(raw).ToArray().Select(v => (long)v).ToArray(), dims);
            case Int32: return tensor(MemoryMarshal.Cast<byte, int>(raw).ToArray(), dims);
            case UInt32: return tensor(MemoryMarshal.Cast<byte, uint>(raw).ToArray().Select(v => (long)v).ToArray(), dims);
            case Int16: return tensor(MemoryMarshal.Cast<byte, short>(raw).ToArray(), dims);
            case UInt16: return tensor(MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(v => (int)v).ToArray(), dims);
            case Int8: return tensor(MemoryMarshal.Cast<byte, sbyte>(raw).ToArray(), dims);
            case UInt8: return tensor(raw.ToArray(), dims);
            case Bool: return tensor(raw.ToArray().Select(v => v != 0).ToArray(), dims);
            case Float16:
            {
                var h = MemoryMarshal.Cast<byte, Half>(raw);
                var f = new float[h.Length];
                for (int i = 0; i < f.Length; i++) f[i] = (float)h[i];
                return tensor(f, dims);
            }
            case BFloat16:
            {
                var f = new float[raw.Length / 2];
                for (int i = 0; i < f.Length; i++) f[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw.Slice(2 * i)) << 16);
                return tensor(f, dims);
            }
        }
        throw new BadInputException($"Element type {TypeName(type)} is not supported.");
    }

    static ReadOnlyMemory<byte> ReadExternal(TensorProto p, string? baseDir, long expected)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var kv in p.ExternalData)
        {
            switch (kv.Key)
            {
                case "location": location = kv.Value; break;
                case "offset": offset = long.Parse(kv.Value, System.Globalization.CultureInfo.InvariantCulture); break;
                case "length": length = long.Parse(kv.Value, System.Globalization.CultureInfo.InvariantCulture); break;
            }
        }
        if (location is null) throw new BadInputException($"Tensor '{p.Name}' is stored externally but names no file.");
        if (baseDir is null) throw new BadInputException($"Tensor '{p.Name}' is stored in '{location}', but the model was not read from a file, so there is no folder to find it in.");
        // External data must stay inside the model's folder, links resolved: a crafted file must not read /etc/passwd.
        string full = ConfinedPath.Resolve(baseDir, location)
            ?? throw new BadInputException($"Tensor '{BadInputException.Shown(p.Name)}' names external data '{BadInputException.Shown(location)}' outside the model's folder; refused.");
        if (!File.Exists(full)) throw new BadInputException($"External data file '{location}' for tensor '{p.Name}' does not exist.");
        if (length < 0) length = expected;
        using var fs = Imaging.InputFile.OpenRead(full, "external data file", long.MaxValue, confined: false);
        if (offset < 0 || offset + length > fs.Length)
            throw new BadInputException($"Tensor '{p.Name}' reads bytes {offset}..{offset + length} of '{location}', which has {fs.Length}.");
        var buf = new byte[length];
        fs.Seek(offset, SeekOrigin.Begin);
        fs.ReadExactly(buf);
        return buf;
    }

    /// <summary>Builds a TensorProto of float32 values (used by tests and by export code).</summary>
    public static TensorProto FromFloats(string name, float[] values, long[] dims)
    {
        var p = new TensorProto { Name = name, DataType = Float };
        p.Dims.AddRange(dims);
        p.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return p;
    }
}
