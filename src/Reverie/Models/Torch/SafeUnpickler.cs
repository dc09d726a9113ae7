using System.Text;

namespace Reverie.Models.Torch;

/// <summary>A global a pickle asked for, resolved against the allow-list (never imported or executed).</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A call recorded by REDUCE or NEWOBJ on an allowed global: the callable and its arguments.</summary>
internal sealed record PickleCall(PickleGlobal Callable, object?[] Args)
{
    /// <summary>State set by BUILD (e.g. a state_dict's metadata or a parameter's attributes).</summary>
    public object? State { get; set; }
    /// <summary>Items set by SETITEM(S) (an OrderedDict's entries), in order.</summary>
    public Dictionary<object, object?> Items { get; } = new();
}

/// <summary>A persistent id (a tensor storage reference in PyTorch files).</summary>
internal sealed record PicklePersistent(object? Id);

/// <summary>The pickle MARK.</summary>
sealed class PickleMark
{
    public static readonly PickleMark Instance = new();
}

/// <summary>
/// A pickle reader that builds plain data (dictionaries, lists, tuples, strings, numbers) and
/// records calls to an allow-list of globals instead of executing anything. Any other global is
/// refused by name before it is used. It understands the opcodes of protocols 0 to 5 that data
/// pickles use; opcodes that only code needs (INST, OBJ, EXT*) are refused.
/// </summary>
internal sealed class SafeUnpickler
{
    readonly HashSet<string> _allowed;
    readonly byte[] _data;
    int _pos;
    readonly List<object?> _stack = new();
    readonly Dictionary<long, object?> _memo = new();

    /// <summary>Reads the pickle in <paramref name="data"/>, allowing the globals named "module.name" in <paramref name="allowed"/>.</summary>
    public SafeUnpickler(byte[] data, IEnumerable<string> allowed, int offset = 0)
    {
        _data = data;
        _pos = offset;
        _allowed = new HashSet<string>(allowed, StringComparer.Ordinal);
    }

    /// <summary>Where reading stopped (just after STOP).</summary>
    public int Position => _pos;

    static BadInputException Bad(string what) => new($"Unsafe or corrupt pickle: {what}.");

    byte U8() => _pos < _data.Length ? _data[_pos++] : throw Bad("it ends early");
    ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || _pos + n > _data.Length) throw Bad("it ends early");
        var s = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }
    int I32() => BitConverter.ToInt32(Take(4));
    string Line()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Bad("a text argument has no end");
        var s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    object? Pop()
    {
        if (_stack.Count == 0) throw Bad("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    List<object?> PopToMark()
    {
        int m = _stack.FindLastIndex(o => o is PickleMark);
        if (m < 0) throw Bad("no MARK");
        var items = _stack.GetRange(m + 1, _stack.Count - m - 1);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    PickleGlobal Global(string module, string name)
    {
        var g = new PickleGlobal(module, name);
        if (!_allowed.Contains(g.ToString())) throw new BadInputException($"Refused to load: the file asks for '{BadInputException.Shown(g)}', which a weights file does not need (only tensors and their containers are allowed).");
        return g;
    }

    /// <summary>Runs the pickle to STOP and returns the object built; anything malformed is a <see cref="BadInputException"/>.</summary>
    public object? Load(Func<object?, object?>? persistentLoad = null)
    {
        int start = _pos;
        try { return Run(persistentLoad); }
        catch (Exception ex) when (ex is FormatException or OverflowException or InvalidCastException or ArgumentException
                                       or IndexOutOfRangeException or KeyNotFoundException or InvalidOperationException or NullReferenceException)
        {
            throw Bad($"it is malformed {_pos - start} bytes in ({ex.GetType().Name})");
        }
    }

    object? Run(Func<object?, object?>? persistentLoad)
    {
        while (true)
        {
            byte op = U8();
            switch (op)
            {
                case 0x80: U8(); break;                                   // PROTO
                case 0x95: Take(8); break;                                // FRAME
                case (byte)'.': return Pop();                             // STOP
                case (byte)'(': _stack.Add(PickleMark.Instance); break;   // MARK
                case (byte)'}': _stack.Add(new Dictionary<object, object?>()); break;
                case (byte)']': _stack.Add(new List<object?>()); break;
                case (byte)')': _stack.Add(Array.Empty<object?>()); break;
                case (byte)'N': _stack.Add(null); break;
                case 0x88: _stack.Add(true); break;
                case 0x89: _stack.Add(false); break;
                case (byte)'J': _stack.Add((long)I32()); break;
                case (byte)'K': _stack.Add((long)U8()); break;
                case (byte)'M': _stack.Add((long)BitConverter.ToUInt16(Take(2))); break;
                case 0x8a:                                                // LONG1
                {
                    int n = U8();
                    var b = Take(n);
                    if (n > 8) { _stack.Add(new System.Numerics.BigInteger(b, isUnsigned: false, isBigEndian: false)); break; }
                    long v = 0;
                    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
                    if (n > 0 && n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
                    _stack.Add(v);
                    break;
                }
                case (byte)'G': { var b = Take(8).ToArray(); Array.Reverse(b); _stack.Add(BitConverter.ToDouble(b)); break; }
                case (byte)'X': _stack.Add(Encoding.UTF8.GetString(Take((uint)I32()))); break;
                case 0x8c: _stack.Add(Encoding.UTF8.GetString(Take(U8()))); break;
                case 0x8d: _stack.Add(Encoding.UTF8.GetString(Take(BitConverter.ToInt64(Take(8))))); break;
                case (byte)'B': _stack.Add(Take((uint)I32()).ToArray()); break;
                case (byte)'C': _stack.Add(Take(U8()).ToArray()); break;
                case (byte)'V': _stack.Add(Line()); break;                // UNICODE (protocol 0)
                case (byte)'I':                                           // INT (protocol 0)
                {
                    string s = Line();
                    _stack.Add(s == "01" ? true : s == "00" ? false : long.Parse(s, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                }
                case (byte)'t': _stack.Add(PopToMark().ToArray()); break;
                case 0x85: _stack.Add(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b, c }); break; }
                case (byte)'l': _stack.Add(PopToMark()); break;
                case (byte)'d':
                {
                    var items = PopToMark();
                    var d = new Dictionary<object, object?>();
                    for (int i = 0; i + 1 < items.Count; i += 2) d[Key(items[i])] = items[i + 1];
                    _stack.Add(d);
                    break;
                }
                case (byte)'q': _memo[U8()] = Peek(); break;
                case (byte)'r': _memo[(uint)I32()] = Peek(); break;
                case 0x94: _memo[_memo.Count] = Peek(); break;
                case (byte)'h': _stack.Add(Memo(U8())); break;
                case (byte)'j': _stack.Add(Memo((uint)I32())); break;
                case (byte)'p': _memo[long.Parse(Line(), System.Globalization.CultureInfo.InvariantCulture)] = Peek(); break;
                case (byte)'g': _stack.Add(Memo(long.Parse(Line(), System.Globalization.CultureInfo.InvariantCulture))); break;
                case (byte)'c': { string module = Line(), name = Line(); _stack.Add(Global(module, name)); break; }
                case 0x93: { var name = Pop() as string; var module = Pop() as string; _stack.Add(Global(module ?? throw Bad("STACK_GLOBAL without a module"), name ?? throw Bad("STACK_GLOBAL without a name"))); break; }
                case (byte)'R':                                           // REDUCE
                case 0x81:                                                // NEWOBJ
                {
                    var args = Pop() as object?[] ?? throw Bad("call arguments are not a tuple");
                    var f = Pop() as PickleGlobal ?? throw Bad("a call on something that is not an allowed global");
                    _stack.Add(new PickleCall(f, args));
                    break;
                }
                case (byte)'b':                                           // BUILD
                {
                    var state = Pop();
                    switch (Peek())
                    {
                        case PickleCall call: call.State = state; break;
                        case Dictionary<object, object?> d when state is Dictionary<object, object?> s: foreach (var kv in s) d[kv.Key] = kv.Value; break;
                        default: throw Bad("BUILD on an object that cannot take state");
                    }
                    break;
                }
                case (byte)'Q': { var id = Pop(); _stack.Add(persistentLoad is null ? new PicklePersistent(id) : persistentLoad(id)); break; }
                case (byte)'P': { var id = Line(); _stack.Add(persistentLoad is null ? new PicklePersistent(id) : persistentLoad(id)); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek())[Key(k)] = v; break; }
                case (byte)'u':
                {
                    var items = PopToMark();
                    var d = AsDict(Peek());
                    for (int i = 0; i + 1 < items.Count; i += 2) d[Key(items[i])] = items[i + 1];
                    break;
                }
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }
                case (byte)'0': Pop(); break;                             // POP
                case (byte)'1': PopToMark(); break;                       // POP_MARK
                case (byte)'2': _stack.Add(Peek()); break;                // DUP
                default: throw Bad($"opcode 0x{op:x2} at byte {_pos - 1} is not allowed in a weights file");
            }
        }
    }

    object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Bad("stack underflow");
    object? Memo(long k) => _memo.TryGetValue(k, out var v) ? v : throw Bad($"memo {k} is missing");
    static object Key(object? k) => k switch
    {
        null => throw Bad("a null dictionary key"),
        object?[] t => string.Join("\u0001", t.Select(x => x?.ToString())), // tuples as keys are rare; keep them distinct
        _ => k,
    };
    static Dictionary<object, object?> AsDict(object? o) => o switch
    {
        Dictionary<object, object?> d => d,
        PickleCall { Callable.Name: "OrderedDict" } c => c.Items,
        _ => throw Bad("SETITEM on something that is not a dictionary"),
    };
    static List<object?> AsList(object? o) => o as List<object?> ?? throw Bad("APPEND on something that is not a list");
}
