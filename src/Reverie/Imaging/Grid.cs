using static TorchSharp.torch;

namespace Reverie.Imaging;

/// <summary>Lays images out in a grid, optionally with a short label (digits, lower-case letters and :._-/) under each.</summary>
internal static class Grid
{
    // A 3x5 pixel font: each glyph is five rows of three bits.
    static readonly Dictionary<char, string[]> Font = new()
    {
        ['0'] = ["111", "101", "101", "101", "111"], ['1'] = ["010", "110", "010", "010", "111"], ['2'] = ["111", "001", "111", "100", "111"],
        ['3'] = ["111", "001", "111", "001", "111"], ['4'] = ["101", "101", "111", "001", "001"], ['5'] = ["111", "100", "111", "001", "111"],
        ['6'] = ["111", "100", "111", "101", "111"], ['7'] = ["111", "001", "010", "010", "010"], ['8'] = ["111", "101", "111", "101", "111"],
        ['9'] = ["111", "101", "111", "001", "111"], [':'] = ["000", "010", "000", "010", "000"], ['.'] = ["000", "000", "000", "000", "010"],
        ['-'] = ["000", "000", "111", "000", "000"], ['_'] = ["000", "000", "000", "000", "111"], ['/'] = ["001", "001", "010", "100", "100"],
        [' '] = ["000", "000", "000", "000", "000"], ['#'] = ["101", "111", "101", "111", "101"],
        ['a'] = ["000", "011", "101", "101", "011"], ['b'] = ["100", "110", "101", "101", "110"], ['c'] = ["000", "011", "100", "100", "011"], ['d'] = ["001", "011", "101", "101", "011"], ['e'] = ["000", "010", "111", "100", "011"], ['f'] = ["011", "100", "110", "100", "100"], ['g'] = ["011", "101", "011", "001", "110"], ['h'] = ["100", "110", "101", "101", "101"], ['i'] = ["010", "000", "010", "010", "010"], ['j'] = ["001", "000", "001", "101", "010"], ['k'] = ["100", "101", "110", "101", "101"], ['l'] = ["110", "010", "010", "010", "111"], ['m'] = ["000", "111", "111", "101", "101"], ['n'] = ["000", "110", "101", "101", "101"], ['o'] = ["000", "010", "101", "101", "010"], ['p'] = ["000", "110", "101", "110", "100"], ['q'] = ["000", "011", "101", "011", "001"], ['r'] = ["000", "101", "110", "100", "100"], ['s'] = ["000", "011", "110", "011", "110"], ['t'] = ["010", "111", "010", "010", "001"], ['u'] = ["000", "101", "101", "101", "011"], ['v'] = ["000", "101", "101", "101", "010"], ['w'] = ["000", "101", "101", "111", "111"], ['x'] = ["000", "101", "010", "010", "101"], ['y'] = ["000", "101", "011", "001", "110"], ['z'] = ["000", "111", "001", "100", "111"],
    };

    /// <summary>Images [1,3,h,w] (or one batch [N,3,h,w]) of one size into a grid with <paramref name="columns"/> columns.</summary>
    public static Tensor Make(IReadOnlyList<Tensor> images, int columns, IReadOnlyList<string>? labels = null, int gap = 4, int scale = 2)
    {
        var tiles = images.SelectMany(t => Enumerable.Range(0, (int)t.shape[0]).Select(i => t.narrow(0, i, 1))).ToList();
        if (tiles.Count == 0) throw new ArgumentException("No images.");
        long h = tiles[0].shape[2], w = tiles[0].shape[3];
        int rows = (tiles.Count + columns - 1) / columns;
        int labelH = labels is null ? 0 : 5 * scale + 2 * scale;
        var canvas = ones(1, 3, rows * (h + labelH + gap) + gap, columns * (w + gap) + gap);
        using var noGrad = no_grad();
        for (int i = 0; i < tiles.Count; i++)
        {
            long y = gap + (i / columns) * (h + labelH + gap), x = gap + (i % columns) * (w + gap);
            canvas.narrow(2, y, h).narrow(3, x, w).copy_(tiles[i].to(canvas.device).to(ScalarType.Float32));
            if (labels is not null && i < labels.Count) DrawText(canvas, labels[i], y + h + scale, x, scale);
        }
        return canvas;
    }

    static void DrawText(Tensor canvas, string text, long y, long x, int scale)
    {
        long maxX = canvas.shape[3];
        foreach (char ch in text)
        {
            if (!Font.TryGetValue(char.ToLowerInvariant(ch), out var glyph)) glyph = Font['#'];
            for (int r = 0; r < 5; r++)
                for (int c = 0; c < 3; c++)
                    if (glyph[r][c] == '1' && x + (c + 1) * scale <= maxX)
                        canvas.narrow(2, y + r * scale, scale).narrow(3, x + c * scale, scale).fill_(S(0.0));
            x += 4 * scale;
        }
    }
}
