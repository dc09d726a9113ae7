using System.Globalization;
using Reverie.Models;

namespace Reverie.Objectives;

/// <summary>
/// The one objective language, used by every command that takes an objective
/// (<c>dream --objective</c> and <c>--layer</c>, <c>visualize</c>, <c>atlas</c>, <c>dream-target</c>,
/// <c>attack --target</c>, <c>fool</c>). For example
/// <c>inception_4c/output + 5*class:espresso - 1e-4*tv</c>.
/// <list type="bullet">
/// <item><c>LAYER</c>: the whole layer, DeepDream's L2 (half the mean square of its activations);</item>
/// <item><c>LAYER:C</c>: channel C's mean (Lucid's channel objective); <c>LAYER:C@X,Y</c> one neuron,
/// <c>LAYER:C@c</c> the centre one;</item>
/// <item><c>l2(LAYER:CHANNELS)</c>: DeepDream's L2 of some channels (<c>12</c>, <c>0-15</c>, <c>3,7,9</c>);</item>
/// <item><c>class:NAME</c> or <c>class:INDEX</c> (the logit), <c>class:NAME:prob</c> (the probability);
/// names are case-insensitive, with <c>_</c> for spaces or in double quotes;</item>
/// <item><c>direction:LAYER@FILE</c> (dot product with a direction, one number per channel),
/// <c>diversity:LAYER</c> (across a batch);</item>
/// <item><c>max(LAYER:C)</c>: channel C's strongest response anywhere;</item>
/// <item>regularizers on the image: <c>tv</c> (neural-style's total variation), <c>tv(V)</c>
/// (Mahendran and Vedaldi's), <c>alpha</c> or <c>alpha(A)</c> (the α-norm); enter them with a minus;</item>
/// <item><c>+</c>, <c>-</c>, scalar <c>*</c> and parentheses combine terms.</item>
/// </list>
/// <c>LAYER:C</c> meant the L2 of channel C in <c>dream --layer</c> before version 0.2; that form
/// is refused there with a sentence that gives its new spelling, <c>l2(LAYER:C)</c>.
/// Errors name the position in the expression.
/// </summary>
public sealed class ObjectiveLanguage
{
    /// <summary>What a term's parser may use: the network and the helpers that check names against it.</summary>
    internal sealed class Context(INetwork network)
    {
        /// <summary>The network the objective is for.</summary>
        public INetwork Network { get; } = network;
        /// <summary>The canonical name of a layer (unknown names raise the nearest names).</summary>
        public string Layer(string name) => Network.ResolveLayer(name);
        /// <summary>The channel count of a layer, or <see cref="long.MaxValue"/> when unknown.</summary>
        public long Channels(string canonical) =>
            Network.Layers.FirstOrDefault(l => l.Name == canonical || l.Aliases.Contains(canonical))?.Channels ?? long.MaxValue;
        /// <summary>Checks that a channel exists in a layer.</summary>
        public void CheckChannel(string display, string canonical, int channel)
        {
            long n = Channels(canonical);
            if (channel >= n) throw new BadInputException($"channel {channel} is out of range for layer '{display}', which has channels 0-{n - 1}.");
        }
    }

    /// <summary>
    /// Terms written <c>NAME</c> or <c>NAME(ARGUMENT)</c>. A new objective is one file with a static
    /// parse method, plus one line here.
    /// </summary>
    static readonly Dictionary<string, Func<string?, Context, Objective>> Functions = new(StringComparer.OrdinalIgnoreCase)
    {
        ["l2"] = ParseL2,
        ["tv"] = TotalVariation.Parse,
        ["alpha"] = AlphaNorm.Parse,
        ["max"] = ChannelMax.Parse,
    };

    /// <summary>Terms written <c>PREFIX:REST</c>.</summary>
    static readonly Dictionary<string, Func<string, Context, Objective>> Prefixed = new(StringComparer.OrdinalIgnoreCase)
    {
        ["class"] = ParseClass,
        ["direction"] = ParseDirection,
        ["diversity"] = (rest, c) => new DiversityObjective(c.Layer(rest), rest),
    };

    readonly Context _context;
    string _text = "";
    int _pos;

    /// <summary>A parser for objectives on <paramref name="network"/>.</summary>
    public ObjectiveLanguage(INetwork network) => _context = new Context(network);

    /// <summary>Parses an expression on <paramref name="network"/>.</summary>
    public static Objective Parse(INetwork network, string text) => new ObjectiveLanguage(network).Parse(text);

    /// <summary>Parses an expression.</summary>
    public Objective Parse(string text)
    {
        _text = text;
        _pos = 0;
        if (string.IsNullOrWhiteSpace(text)) throw new BadInputException("The objective is empty; give a layer, a channel (LAYER:C) or a class (class:NAME).");
        var (obj, _) = Expr();
        Skip();
        if (_pos < _text.Length) throw Error("unexpected text");
        return obj ?? throw Error("the expression is only a number; it needs a layer or a class", 0);
    }

    /// <summary>
    /// Parses a value of <c>dream --layer</c>: the language, except that the pre-0.2 form
    /// <c>LAYER:CHANNELS</c> (then the L2 of those channels) is refused with its new spelling.
    /// </summary>
    public Objective ParseDreamLayer(string text)
    {
        string t = text.Trim();
        int star = t.LastIndexOf('*');
        string head = star > 0 && !t[..star].Contains('(') ? t[..star] : t;
        int colon = head.LastIndexOf(':');
        if (colon > 0 && !head.Contains('(') && !Prefixed.ContainsKey(head[..head.IndexOf(':')]) &&
            head[(colon + 1)..].Length > 0 && head[(colon + 1)..].All(ch => char.IsAsciiDigit(ch) || ch is ',' or '-'))
        {
            string weight = star > 0 ? t[star..] : "";
            throw new BadInputException(
                $"--layer '{text}': LAYER:CHANNELS meant the L2 of those channels before Reverie 0.2; LAYER:C is now channel C's mean in every command, " +
                $"and the L2 of channels is written --layer 'l2({head}){weight}'.");
        }
        return Parse(text);
    }

    /// <summary>A number argument of a term (finite).</summary>
    public static double Number(string text, string what)
    {
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
            throw new BadInputException($"{what}: '{text}' is not a finite number.");
        return v;
    }

    /// <summary>Channels as the language writes them: ranges for runs (0-15), commas between.</summary>
    public static string FormatChannels(IReadOnlyList<int> channels)
    {
        var parts = new List<string>();
        for (int i = 0; i < channels.Count;)
        {
            int j = i;
            while (j + 1 < channels.Count && channels[j + 1] == channels[j] + 1) j++;
            parts.Add(j > i + 1 ? $"{channels[i]}-{channels[j]}" : j == i + 1 ? $"{channels[i]},{channels[j]}" : $"{channels[i]}");
            i = j + 1;
        }
        return string.Join(",", parts);
    }

    /// <summary>Parses a channel list: numbers and ranges like 0-15, separated by commas.</summary>
    public static List<int> ParseChannels(string text, string what)
    {
        var channels = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-');
            if (range.Length is 1 or 2 && range.All(r => r.Length is > 0 and < 7 && r.All(char.IsAsciiDigit)))
            {
                int a = int.Parse(range[0], CultureInfo.InvariantCulture), b = int.Parse(range[^1], CultureInfo.InvariantCulture);
                if (b < a) throw new BadInputException($"{what}: the channel range {part} runs backwards.");
                if (b - a > 100_000) throw new BadInputException($"{what}: the channel range {part} is too long.");
                for (int c = a; c <= b; c++) channels.Add(c);
            }
            else throw new BadInputException($"{what}: channels must be numbers or ranges like 0-15, separated by commas.");
        }
        if (channels.Count == 0) throw new BadInputException($"{what}: no channels after ':'.");
        return channels;
    }

    BadInputException Error(string what, int? at = null)
    {
        int p = at ?? _pos;
        string near = p < _text.Length ? $" ('{BadInputException.Shown(_text[p..Math.Min(_text.Length, p + 12)])}')" : " (at the end)";
        return new BadInputException($"Objective '{BadInputException.Shown(_text, 200)}': {what} at position {p + 1}{near}.");
    }

    void Skip() { while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos])) _pos++; }
    char Peek() { Skip(); return _pos < _text.Length ? _text[_pos] : '\0'; }

    // Each level returns an objective or a plain number (for scalar factors).
    (Objective? Obj, double Num) Expr()
    {
        var left = Term();
        while (Peek() is '+' or '-')
        {
            char op = _text[_pos];
            int at = _pos++;
            var right = Term();
            if (left.Obj is null || right.Obj is null) throw Error($"'{op}' needs objectives on both sides", at);
            left = (op == '+' ? left.Obj + right.Obj : left.Obj - right.Obj, 0);
        }
        return left;
    }

    (Objective? Obj, double Num) Term()
    {
        var left = Factor();
        while (Peek() == '*')
        {
            int at = _pos++;
            var right = Factor();
            if (left.Obj is not null && right.Obj is not null) throw Error("two objectives cannot be multiplied; '*' scales by a number", at);
            left = left.Obj is not null ? (right.Num * left.Obj, 0) : right.Obj is not null ? (left.Num * right.Obj, 0) : (null, left.Num * right.Num);
            if (left.Obj is null && !double.IsFinite(left.Num)) throw Error("the weight is not a finite number", at);
        }
        return left;
    }

    (Objective? Obj, double Num) Factor()
    {
        char c = Peek();
        if (c == '\0') throw Error("expected a layer, a class or a number");
        if (c == '(')
        {
            _pos++;
            var inner = Expr();
            if (Peek() != ')') throw Error("expected ')'");
            _pos++;
            return inner;
        }
        if (c == '-')
        {
            _pos++;
            var f = Factor();
            return f.Obj is not null ? (-1.0 * f.Obj, 0) : (null, -f.Num);
        }
        int start = _pos;
        if (char.IsDigit(c) || c == '.')
        {
            while (_pos < _text.Length && (char.IsDigit(_text[_pos]) || _text[_pos] is '.' or 'e' or 'E' ||
                   (_text[_pos] is '-' or '+' && _pos > start && _text[_pos - 1] is 'e' or 'E'))) _pos++;
            // A token like "5x5" is not a number: fall through to an atom.
            if (_pos < _text.Length && !char.IsWhiteSpace(_text[_pos]) && _text[_pos] is not ('+' or '-' or '*' or ')'))
                _pos = start;
            else if (double.TryParse(_text[start.._pos], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                return double.IsFinite(v) ? (null, v) : throw Error("not a finite number", start);
            else throw Error("not a number", start);
        }
        return (Atom(), 0);
    }

    Objective Atom()
    {
        int start = _pos;
        var sb = new System.Text.StringBuilder();
        while (_pos < _text.Length && !char.IsWhiteSpace(_text[_pos]) && _text[_pos] is not ('+' or '*' or '(' or ')'))
        {
            if (_text[_pos] == '"')
            {
                int close = _text.IndexOf('"', _pos + 1);
                if (close < 0) throw Error("unclosed '\"'");
                sb.Append(_text, _pos + 1, close - _pos - 1);
                _pos = close + 1;
                continue;
            }
            sb.Append(_text[_pos++]);
        }
        string token = sb.ToString();
        if (token.Length == 0) throw Error("expected a layer, a class or a number", start);
        string? argument = null;
        bool call = _pos < _text.Length && _text[_pos] == '(';
        if (call)
        {
            if (!Functions.ContainsKey(token))
                throw Error($"'{BadInputException.Shown(token)}' is not a function; the functions are {string.Join(", ", Functions.Keys)}", start);
            int depth = 0, open = _pos;
            for (; _pos < _text.Length; _pos++)
            {
                if (_text[_pos] == '(') depth++;
                else if (_text[_pos] == ')' && --depth == 0) break;
            }
            if (_pos >= _text.Length) throw Error("expected ')'", open);
            argument = _text[(open + 1).._pos];
            _pos++;
        }
        try { return Build(token, argument, call); }
        catch (BadInputException e) when (!e.Message.StartsWith("Objective '", StringComparison.Ordinal))
        {
            throw new BadInputException($"Objective '{BadInputException.Shown(_text, 200)}', term at position {start + 1}: {e.Message}", e);
        }
    }

    Objective Build(string token, string? argument, bool call)
    {
        if (Functions.TryGetValue(token, out var function) && (call || !_context.Network.HasLayer(token))) return function(argument, _context);
        int prefixEnd = token.IndexOf(':');
        if (prefixEnd > 0 && Prefixed.TryGetValue(token[..prefixEnd], out var prefixed)) return prefixed(token[(prefixEnd + 1)..], _context);
        // A whole layer, unless the name ends in :CHANNEL[@X,Y].
        if (TryResolve(token, out var whole)) return new LayerL2(whole, null, token);
        int colon = token.LastIndexOf(':');
        if (colon <= 0) { _context.Layer(token); throw new InvalidOperationException("unreachable: an unknown layer raises"); }
        string layer = token[..colon], spec = token[(colon + 1)..];
        string tensor = _context.Layer(layer);
        string chText = spec, at = "";
        int atSign = spec.IndexOf('@');
        if (atSign >= 0) { chText = spec[..atSign]; at = spec[(atSign + 1)..]; }
        if (!int.TryParse(chText, NumberStyles.None, CultureInfo.InvariantCulture, out int ch))
        {
            if (atSign < 0 && chText.Length > 0 && chText.All(c => char.IsAsciiDigit(c) || c is ',' or '-'))
                throw new BadInputException($"'{BadInputException.Shown(token)}': LAYER:C is one channel's mean; for several channels write l2({BadInputException.Shown(token)}) (DeepDream's L2) or add channel terms with '+'.");
            throw new BadInputException($"'{BadInputException.Shown(spec)}' is not a channel number (LAYER:CHANNEL or LAYER:CHANNEL@X,Y).");
        }
        _context.CheckChannel(layer, tensor, ch);
        if (atSign < 0) return new ChannelObjective(tensor, ch, layer);
        if (at is "c" or "") return new NeuronObjective(tensor, ch, null, null, layer);
        var xy = at.Split(',');
        if (xy.Length != 2 || !int.TryParse(xy[0], NumberStyles.None, CultureInfo.InvariantCulture, out int x) || !int.TryParse(xy[1], NumberStyles.None, CultureInfo.InvariantCulture, out int y))
            throw new BadInputException($"'@{BadInputException.Shown(at)}' is not a position; write LAYER:CHANNEL@X,Y with X and Y from 0, or @c for the centre.");
        var info = _context.Network.Layers.FirstOrDefault(l => l.Name == tensor || l.Aliases.Contains(tensor));
        if (info is { Shape.Length: 4 } && (x >= info.Shape[3] || y >= info.Shape[2]))
            throw new BadInputException($"position {x},{y} is outside layer '{layer}', which is {info.Shape[3]}x{info.Shape[2]} at the model's input size.");
        return new NeuronObjective(tensor, ch, x, y, layer);
    }

    bool TryResolve(string name, out string tensor)
    {
        try { tensor = _context.Layer(name); return true; }
        catch (BadInputException) { tensor = ""; return false; }
    }

    static Objective ParseL2(string? argument, Context c)
    {
        if (string.IsNullOrWhiteSpace(argument)) throw new BadInputException("l2(...) needs a layer: l2(LAYER) or l2(LAYER:CHANNELS).");
        string a = argument.Trim();
        if (c.Network.HasLayer(a)) return new LayerL2(c.Layer(a), null, a);
        int colon = a.LastIndexOf(':');
        if (colon <= 0) return new LayerL2(c.Layer(a), null, a);
        string layer = a[..colon];
        string tensor = c.Layer(layer);
        var channels = ParseChannels(a[(colon + 1)..], $"l2({a})");
        foreach (var ch in channels.Where(ch => ch >= c.Channels(tensor)).Take(1)) c.CheckChannel(layer, tensor, ch);
        return new LayerL2(tensor, channels, layer);
    }

    static Objective ParseDirection(string rest, Context c)
    {
        var parts = rest.Split('@', 2);
        if (parts.Length != 2) throw new BadInputException("a direction is written direction:LAYER@FILE.");
        string tensor = c.Layer(parts[0]);
        string text = Imaging.InputFile.ReadAllText(parts[1], "direction file", 16 << 20);
        var values = new List<float>();
        foreach (var v in text.Split([',', ' ', '\n', '\r', '\t', '[', ']'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) || !float.IsFinite(f))
                // The file's text is not quoted: a recipe from elsewhere may name a file whose content is not the reader's to see.
                throw new BadInputException($"direction file '{BadInputException.Shown(parts[1])}' holds something other than a finite number at value {values.Count + 1}; it must hold the direction's numbers, separated by commas or spaces.");
            values.Add(f);
        }
        return new DirectionObjective(tensor, values.ToArray(), parts[0]);
    }

    static Objective ParseClass(string spec, Context c)
    {
        var network = c.Network;
        bool prob = false;
        foreach (var suffix in new[] { ":prob", ":logit" })
            if (spec.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) { prob = suffix == ":prob"; spec = spec[..^suffix.Length]; }
        var labels = network.Labels;
        string logits = network.LogitsLayer ?? network.OutputLayer;
        int count = labels?.Count ?? (int)(network.Layers.FirstOrDefault(l => l.Aliases.Contains(logits) || l.Name == logits)?.Channels ?? 0);
        if (int.TryParse(spec, NumberStyles.None, CultureInfo.InvariantCulture, out int index))
        {
            if (index >= count) throw new BadInputException($"class {index} is out of range; the model has classes 0-{count - 1}.");
            return new ClassObjective(logits, index, labels?[index] ?? spec, prob);
        }
        if (labels is null) throw new BadInputException("the model has no class names; use class:INDEX.");
        string wanted = spec.Replace('_', ' ');
        int found = labels.ToList().FindIndex(l => string.Equals(l, wanted, StringComparison.OrdinalIgnoreCase));
        if (found < 0)
            throw new BadInputException($"unknown class '{BadInputException.Shown(wanted)}'; nearest: {string.Join(", ", NameSuggestions.Nearest(wanted, labels))}.");
        return new ClassObjective(logits, found, labels[found], prob);
    }
}
