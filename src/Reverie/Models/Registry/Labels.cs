using System.Reflection;

namespace Reverie.Models.Registry;

/// <summary>Class-name lists.</summary>
internal static class Labels
{
    static IReadOnlyList<string>? _imagenet;

    /// <summary>The 1000 ILSVRC-2012 class names in the standard order (first synonym of each synset).</summary>
    public static IReadOnlyList<string> ImageNet => _imagenet ??= Parse(ReadResource("imagenet_synset_words.txt"));

    /// <summary>The largest labels file read: 8 MB, room for 100,000 long class names.</summary>
    internal const long MaxFileBytes = 8 << 20;

    /// <summary>Reads a labels file: one class per line; a leading WordNet id (n01440764) is dropped, and only the first comma-separated synonym is kept.</summary>
    public static IReadOnlyList<string> Load(string path, bool confined = true)
    {
        return Parse(Imaging.InputFile.ReadAllText(path, "labels file", MaxFileBytes, confined));
    }

    /// <summary>Parses label text.</summary>
    public static IReadOnlyList<string> Parse(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        while (lines.Count > 0 && lines[^1].Trim().Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines.Select(l =>
        {
            // A label is shown on terminals: no control character (an escape sequence) gets through.
            string s = new string([.. l.Trim().Select(c => char.IsControl(c) ? '?' : c)]);
            if (s.Length > 10 && s[0] == 'n' && s[1..9].All(char.IsDigit) && s[9] == ' ') s = s[10..];
            int comma = s.IndexOf(',');
            return comma > 0 ? s[..comma].Trim() : s;
        }).ToList();
    }

    internal static string ReadResource(string name)
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream("Reverie.Resources." + name)
            ?? throw new InvalidOperationException($"Resource {name} is missing from the build.");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }
}
