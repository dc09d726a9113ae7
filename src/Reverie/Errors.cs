namespace Reverie;

/// <summary>A failure Reverie can explain in one sentence. The CLI prints <see cref="Exception.Message"/> and exits with 1.</summary>
public class ReverieException : Exception
{
    /// <summary>Creates the exception with a one-sentence message.</summary>
    public ReverieException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The user gave something Reverie cannot accept (a missing or corrupt file, an unknown name, an absurd size). The CLI exits with 2.</summary>
public class BadInputException : ReverieException
{
    /// <summary>Creates the exception with a one-sentence message naming what was wrong and what would be accepted.</summary>
    public BadInputException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>
    /// A name read from an untrusted file, fit to quote in a message: control characters escaped
    /// (so the message stays one line) and cut to <paramref name="max"/> characters.
    /// </summary>
    public static string Shown(object? value, int max = 60)
    {
        var s = value?.ToString() ?? "";
        var b = new System.Text.StringBuilder();
        foreach (char c in s)
        {
            if (b.Length >= max) { b.Append('…'); break; }
            if (char.IsControl(c) || c == '\uFFFD') b.Append($"\\x{(int)c:x2}");
            else b.Append(c);
        }
        return b.ToString();
    }
}

/// <summary>Suggests the closest valid names for a misspelt one.</summary>
internal static class NameSuggestions
{
    /// <summary>Returns up to <paramref name="count"/> candidates nearest to <paramref name="wanted"/> by edit distance, with substring matches first.</summary>
    public static IReadOnlyList<string> Nearest(string wanted, IEnumerable<string> candidates, int count = 5)
    {
        string w = wanted.ToLowerInvariant();
        return candidates
            .Distinct()
            .Select(c => (c, score: Score(w, c.ToLowerInvariant())))
            .OrderBy(t => t.score).ThenBy(t => t.c.Length).ThenBy(t => t.c, StringComparer.Ordinal)
            .Take(count).Select(t => t.c).ToList();
    }

    static int Score(string w, string c)
    {
        int d = Levenshtein(w, c);
        if (c.Contains(w) || w.Contains(c)) d = Math.Min(d, Math.Abs(c.Length - w.Length) / 4);
        return d;
    }

    /// <summary>Edit distance between two strings.</summary>
    public static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}

/// <summary>Checks shared by every options record.</summary>
internal static class Check
{
    /// <summary>Raises <see cref="BadInputException"/> naming the first value that is NaN or infinite.</summary>
    public static void Finite(params (string Name, double Value)[] values)
    {
        foreach (var (name, v) in values)
            if (!double.IsFinite(v)) throw new BadInputException($"{name} must be a finite number; got {v.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
    }
}
