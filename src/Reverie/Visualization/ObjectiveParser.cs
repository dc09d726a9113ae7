using System.Globalization;
using Reverie.Models;
using Reverie.Optimization;

namespace Reverie.Visualization;

/// <summary>
/// Parses objective expressions such as <c>inception_4a/output:97 - 0.5*inception_4a/output:12</c>.
/// <list type="bullet">
/// <item><c>LAYER</c>: the whole layer (half its mean square); <c>LAYER:C</c>: channel C's mean;
/// <c>LAYER:C@X,Y</c>: one neuron (<c>LAYER:C@c</c> for the centre);</item>
/// <item><c>class:NAME</c> or <c>class:INDEX</c> (logit), <c>class:NAME:prob</c> (probability); names
/// are case-insensitive, with <c>_</c> for spaces or in double quotes;</item>
/// <item><c>direction:LAYER@FILE</c>: the dot product with a direction (a file of numbers, one per channel);</item>
/// <item><c>diversity:LAYER</c>: diversity across the batch;</item>
/// <item><c>+</c>, <c>-</c>, scalar <c>*</c> and parentheses combine them.</item>
/// </list>
/// Errors name the position in the expression.
/// </summary>
public sealed class ObjectiveParser(INetwork network)
{
    string _text = "";
    int _pos;

    /// <summary>Parses an expression.</summary>
    public Objective Parse(string text)
    {
        _text = text;
        _pos = 0;
        var (obj, scalar) = Expr();
        Skip();
        if (_pos < _text.Length) throw Error("unexpected text");
        return obj ?? throw Error("the expression is only a number; it needs a layer or a class", 0);
    }

    BadInputException Error(string what, int? at = null)
    {
        int p = at ?? _pos;
        string near = p < _text.Length ? $" ('{_text[p..Math.Min(_text.Length, p + 12)]}')" : " (at the end)";
        return new BadInputException($"Objective '{_text}': {what} at position {p + 1}{near}.");
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
            else if (double.TryParse(_text[start.._pos], NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return (null, v);
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
        try { return Build(token); }
        catch (BadInputException e) when (!e.Message.StartsWith("Objective '", StringComparison.Ordinal))
        {
            throw new BadInputException($"Objective '{_text}', term at position {start + 1}: {e.Message}", e);
        }
    }

    Objective Build(string token)
    {
        if (token.StartsWith("class:", StringComparison.OrdinalIgnoreCase)) return Class(token[6..]);
        if (token.StartsWith("diversity:", StringComparison.OrdinalIgnoreCase))
        {
            string l = token[10..];
            return new DiversityObjective(network.ResolveLayer(l), l);
        }
        if (token.StartsWith("direction:", StringComparison.OrdinalIgnoreCase))
        {
            var parts = token[10..].Split('@', 2);
            if (parts.Length != 2) throw new BadInputException("a direction is written direction:LAYER@FILE.");
            if (!File.Exists(parts[1])) throw new BadInputException($"direction file '{parts[1]}' does not exist.");
            var values = File.ReadAllText(parts[1]).Split([',', ' ', '\n', '\r', '\t', '[', ']'], StringSplitOptions.RemoveEmptyEntries)
                .Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            return new DirectionObjective(network.ResolveLayer(parts[0]), values, parts[0]);
        }
        // A whole layer, unless the name ends in :CHANNEL[@X,Y].
        if (TryResolve(token, out var whole)) return new LayerL2(whole, null, token);
        int colon = token.LastIndexOf(':');
        if (colon <= 0) { network.ResolveLayer(token); throw new InvalidOperationException(); }
        string layer = token[..colon], spec = token[(colon + 1)..];
        string tensor = network.ResolveLayer(layer);
        string chText = spec, at = "";
        int atSign = spec.IndexOf('@');
        if (atSign >= 0) { chText = spec[..atSign]; at = spec[(atSign + 1)..]; }
        if (!int.TryParse(chText, NumberStyles.None, CultureInfo.InvariantCulture, out int ch))
            throw new BadInputException($"'{spec}' is not a channel number (LAYER:CHANNEL or LAYER:CHANNEL@X,Y).");
        long channels = network.Layers.FirstOrDefault(l => l.Name == tensor || l.Aliases.Contains(tensor))?.Channels ?? long.MaxValue;
        if (ch >= channels) throw new BadInputException($"channel {ch} is out of range for layer '{layer}', which has channels 0-{channels - 1}.");
        if (atSign < 0) return new ChannelObjective(tensor, ch, layer);
        if (at is "c" or "") return new NeuronObjective(tensor, ch, null, null, layer);
        var xy = at.Split(',');
        if (xy.Length != 2 || !int.TryParse(xy[0], out int x) || !int.TryParse(xy[1], out int y))
            throw new BadInputException($"'@{at}' is not a position; write LAYER:CHANNEL@X,Y or @c for the centre.");
        return new NeuronObjective(tensor, ch, x, y, layer);
    }

    bool TryResolve(string name, out string tensor)
    {
        try { tensor = network.ResolveLayer(name); return true; }
        catch (BadInputException) { tensor = ""; return false; }
    }

    Objective Class(string spec)
    {
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
        if (labels is null) throw new BadInputException($"the model has no class names; use class:INDEX.");
        string wanted = spec.Replace('_', ' ');
        int found = labels.ToList().FindIndex(l => string.Equals(l, wanted, StringComparison.OrdinalIgnoreCase));
        if (found < 0)
            throw new BadInputException($"unknown class '{wanted}'; nearest: {string.Join(", ", NameSuggestions.Nearest(wanted, labels))}.");
        return new ClassObjective(logits, found, labels[found], prob);
    }
}
