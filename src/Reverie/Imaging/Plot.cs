using System.Globalization;
using SkiaSharp;

namespace Reverie.Imaging;

/// <summary>One series of a line chart: drawn as a line, as dots alone (<paramref name="Points"/>), or as a line with a marker at each value (<paramref name="Markers"/>).</summary>
internal sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, SKColor Color, bool Points = false, bool Markers = false);

/// <summary>A chart panel: lines or points over two linear axes (optionally a logarithmic y axis).</summary>
internal sealed record LineChart(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series) : IPanel
{
    /// <summary>Logarithmic y axis.</summary>
    public bool LogY { get; init; }
    /// <summary>Fixed y range; null fits the data.</summary>
    public (double Min, double Max)? YRange { get; init; }
}

/// <summary>A heat map panel: values on a regular grid, with a colour bar.</summary>
internal sealed record Heatmap(string Title, string XLabel, string YLabel, float[,] Values, (double Min, double Max) XRange, (double Min, double Max) YRange) : IPanel
{
    /// <summary>Fixed colour range; null fits the data.</summary>
    public (double Min, double Max)? ColorRange { get; init; }
}

/// <summary>A confusion matrix panel: rows are true classes, columns predicted ones; cells show counts, shaded by their share of the row.</summary>
internal sealed record ConfusionMatrix(string Title, IReadOnlyList<string> Classes, long[,] Counts) : IPanel;

/// <summary>One series of a bar chart: a value per group, in one colour.</summary>
internal sealed record BarSeries(string Name, IReadOnlyList<double> Values, SKColor Color);

/// <summary>A grouped bar chart: for each group (a category on the x axis) one bar per series; optional dashed reference lines.</summary>
internal sealed record BarChart(string Title, string YLabel, IReadOnlyList<string> Groups, IReadOnlyList<BarSeries> Series) : IPanel
{
    /// <summary>Fixed y range; null fits the data (from 0).</summary>
    public (double Min, double Max)? YRange { get; init; }
    /// <summary>Horizontal reference lines (a threshold), with their labels.</summary>
    public IReadOnlyList<(double Y, string Label)> Lines { get; init; } = [];
}

/// <summary>A panel of a figure.</summary>
internal interface IPanel;

/// <summary>
/// Figures for reports: panels (line charts, heat maps) in a grid, drawn with SkiaSharp and saved
/// as PNG through a temporary file. Text uses DejaVu Sans when the system has it (Debian's
/// fonts-dejavu-core, installed by the project's scripts).
/// </summary>
/// <remarks>
/// Why not ScottPlot 5 (5.1.59 is served, MIT, and draws with the same SkiaSharp 3.119): tried
/// 2026-12-06 on two crossing lines, it drew them well, but its legend sits at a fixed alignment
/// (lower right by default, where it covered one of the lines); choosing the corner that hides the
/// least data, which these figures need (PlotTests), would stay Reverie's code. Its log axis is data
/// transformed by the caller plus a minor-tick generator, the confusion matrix would be a heat map
/// with a text per cell, and it adds HarfBuzzSharp's native library. The switch would trade this
/// file for about as much code around ScottPlot, so the figures stay here.
/// </remarks>
internal static class Plot
{
    /// <summary>A palette of distinguishable colours.</summary>
    public static readonly SKColor[] Palette =
        [new(0x1f, 0x77, 0xb4), new(0xd6, 0x27, 0x28), new(0x2c, 0xa0, 0x2c), new(0xff, 0x7f, 0x0e), new(0x94, 0x67, 0xbd), new(0x8c, 0x56, 0x4b),
         new(0xe3, 0x77, 0xc2), new(0xbc, 0xbd, 0x22), new(0x17, 0xbe, 0xcf), new(0x00, 0x00, 0x80)];

    static readonly Lazy<SKTypeface> Face = new(() =>
    {
        foreach (var f in new[] { "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf" })
            if (File.Exists(f) && SKTypeface.FromFile(f) is { } t) return t;
        return SKTypeface.Default;
    });

    /// <summary>Draws panels in a grid of <paramref name="columns"/> columns, each <paramref name="panelWidth"/> x <paramref name="panelHeight"/>, and saves a PNG.</summary>
    public static void Save(string path, IReadOnlyList<IPanel> panels, int columns, int panelWidth = 520, int panelHeight = 400, string? title = null) =>
        AtomicFile.WriteAllBytes(path, Render(panels, columns, panelWidth, panelHeight, title));

    /// <summary>Draws panels in a grid as <see cref="Save"/> does, and returns the PNG's bytes.</summary>
    public static byte[] Render(IReadOnlyList<IPanel> panels, int columns, int panelWidth = 520, int panelHeight = 400, string? title = null)
    {
        int rows = (panels.Count + columns - 1) / columns, top = title is null ? 0 : 40;
        var info = new SKImageInfo(columns * panelWidth, rows * panelHeight + top);
        using var surface = SKSurface.Create(info);
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        if (title is not null) Text(canvas, title, info.Width / 2f, 27, 20, SKTextAlign.Center, bold: true);
        for (int i = 0; i < panels.Count; i++)
        {
            var area = SKRect.Create(i % columns * panelWidth, top + i / columns * panelHeight, panelWidth, panelHeight);
            switch (panels[i])
            {
                case LineChart c: Draw(canvas, area, c); break;
                case Heatmap h: Draw(canvas, area, h); break;
                case ConfusionMatrix m: Draw(canvas, area, m); break;
                case BarChart b: Draw(canvas, area, b); break;
            }
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    internal static void Text(SKCanvas canvas, string text, float x, float y, float size, SKTextAlign align = SKTextAlign.Left, bool bold = false, float rotate = 0, SKColor? color = null)
    {
        using var font = new SKFont(Face.Value, size) { Embolden = bold };
        using var paint = new SKPaint { Color = color ?? SKColors.Black, IsAntialias = true };
        canvas.Save();
        if (rotate != 0) { canvas.Translate(x, y); canvas.RotateDegrees(rotate); x = 0; y = 0; }
        canvas.DrawText(text, x, y, align, font, paint);
        canvas.Restore();
    }

    /// <summary>"Nice" tick positions covering [lo, hi].</summary>
    public static List<double> Ticks(double lo, double hi, int target = 6)
    {
        if (!(hi > lo)) return [lo];
        double raw = (hi - lo) / target, mag = Math.Pow(10, Math.Floor(Math.Log10(raw))), norm = raw / mag;
        double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
        var ticks = new List<double>();
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.Add(Math.Abs(t) < step * 1e-9 ? 0 : t);
        return ticks;
    }

    internal static string Format(double v) => Math.Abs(v) >= 1e4 || (Math.Abs(v) < 1e-3 && v != 0)
        ? v.ToString("0.#e0", CultureInfo.InvariantCulture) : v.ToString("0.###", CultureInfo.InvariantCulture);

    static SKRect PlotArea(SKRect area, float right = 20) => new(area.Left + 70, area.Top + 36, area.Right - right, area.Bottom - 52);

    static void Frame(SKCanvas canvas, SKRect area, SKRect plot, string title, string xLabel, string yLabel,
                      (double Lo, double Hi) x, (double Lo, double Hi) y, bool logY)
    {
        Text(canvas, title, (plot.Left + plot.Right) / 2, area.Top + 24, 15, SKTextAlign.Center, bold: true);
        Text(canvas, xLabel, (plot.Left + plot.Right) / 2, area.Bottom - 12, 13, SKTextAlign.Center);
        Text(canvas, yLabel, area.Left + 16, (plot.Top + plot.Bottom) / 2, 13, SKTextAlign.Center, rotate: -90);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(0xe4, 0xe4, 0xe4), StrokeWidth = 1 };
        foreach (var t in Ticks(x.Lo, x.Hi))
        {
            float px = plot.Left + (float)((t - x.Lo) / (x.Hi - x.Lo)) * plot.Width;
            canvas.DrawLine(px, plot.Top, px, plot.Bottom, grid);
            canvas.DrawLine(px, plot.Bottom, px, plot.Bottom + 4, axis);
            Text(canvas, Format(t), px, plot.Bottom + 18, 11, SKTextAlign.Center);
        }
        var yTicks = logY ? Enumerable.Range((int)Math.Floor(y.Lo), (int)Math.Ceiling(y.Hi) - (int)Math.Floor(y.Lo) + 1).Select(v => (double)v).Where(v => v >= y.Lo - 1e-9 && v <= y.Hi + 1e-9).ToList()
                          : Ticks(y.Lo, y.Hi);
        foreach (var t in yTicks)
        {
            float py = plot.Bottom - (float)((t - y.Lo) / (y.Hi - y.Lo)) * plot.Height;
            canvas.DrawLine(plot.Left, py, plot.Right, py, grid);
            canvas.DrawLine(plot.Left - 4, py, plot.Left, py, axis);
            Text(canvas, logY ? Format(Math.Pow(10, t)) : Format(t), plot.Left - 6, py + 4, 11, SKTextAlign.Right);
        }
        canvas.DrawRect(plot, axis);
    }

    static void Draw(SKCanvas canvas, SKRect area, LineChart c)
    {
        var plot = PlotArea(area);
        double Y(double v) => c.LogY ? Math.Log10(Math.Max(v, 1e-30)) : v;
        var xs = c.Series.SelectMany(s => s.X).Where(double.IsFinite).ToList();
        var ys = c.Series.SelectMany(s => s.Y).Select(Y).Where(double.IsFinite).ToList();
        if (xs.Count == 0 || ys.Count == 0) return;
        (double Lo, double Hi) x = (xs.Min(), xs.Max()), y = c.YRange is { } r ? (Y(r.Min), Y(r.Max)) : (ys.Min(), ys.Max());
        if (x.Hi <= x.Lo) x = (x.Lo - 1, x.Lo + 1);
        if (y.Hi <= y.Lo) y = (y.Lo - 1, y.Hi + 1);
        if (c.LogY) y = (Math.Floor(y.Lo), Math.Ceiling(y.Hi));
        else if (c.YRange is null) { double pad = (y.Hi - y.Lo) * 0.05; y = (y.Lo - pad, y.Hi + pad); }
        Frame(canvas, area, plot, c.Title, c.XLabel, c.YLabel, x, y, c.LogY);
        // Where each value lands; lines are clipped to the plot, dots and markers are drawn whole (a value on the frame stays visible).
        var placed = c.Series.Select(s => Enumerable.Range(0, s.X.Count).Select(i =>
        {
            double vy = Y(s.Y[i]);
            return double.IsFinite(s.X[i]) && double.IsFinite(vy)
                ? new SKPoint(plot.Left + (float)((s.X[i] - x.Lo) / (x.Hi - x.Lo)) * plot.Width, plot.Bottom - (float)((vy - y.Lo) / (y.Hi - y.Lo)) * plot.Height)
                : (SKPoint?)null;
        }).ToList()).ToList();
        canvas.Save();
        canvas.ClipRect(plot);
        for (int k = 0; k < c.Series.Count; k++)
        {
            if (c.Series[k].Points) continue;
            using var paint = new SKPaint { Color = c.Series[k].Color, StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke };
            using var path = new SKPath();
            bool open = false;
            foreach (var pt in placed[k])
            {
                if (pt is not { } q) { open = false; continue; }
                if (open) path.LineTo(q); else { path.MoveTo(q); open = true; }
            }
            canvas.DrawPath(path, paint);
        }
        canvas.Restore();
        for (int k = 0; k < c.Series.Count; k++)
        {
            if (!c.Series[k].Points && !c.Series[k].Markers) continue;
            using var paint = new SKPaint { Color = c.Series[k].Color, IsAntialias = true, Style = SKPaintStyle.Fill };
            foreach (var pt in placed[k])
                if (pt is { } q) canvas.DrawCircle(q, c.Series[k].Markers ? 3.5f : 2.2f, paint);
        }
        // The legend, in the corner of the plot (or the middle of a side) that hides the least of the data (top right when they tie).
        var named = c.Series.Where(s => s.Name.Length > 0).ToList();
        if (named.Count == 0) return;
        float width = 166, height = named.Count * 17 + 6;
        var corners = new[]
        {
            SKRect.Create(plot.Right - width - 4, plot.Top + 4, width, height), SKRect.Create(plot.Left + 4, plot.Top + 4, width, height),
            SKRect.Create(plot.Right - width - 4, plot.Bottom - height - 4, width, height), SKRect.Create(plot.Left + 4, plot.Bottom - height - 4, width, height),
            SKRect.Create(plot.Right - width - 4, plot.MidY - height / 2, width, height), SKRect.Create(plot.Left + 4, plot.MidY - height / 2, width, height),
        };
        var box = corners.MinBy(r => Hidden(r, placed));
        using var bg = new SKPaint { Color = new SKColor(255, 255, 255, 220) };
        canvas.DrawRect(box, bg);
        float ly = box.Top + 12;
        foreach (var s in named)
        {
            using var paint = new SKPaint { Color = s.Color, StrokeWidth = 3 };
            canvas.DrawLine(box.Left + 6, ly - 4, box.Left + 24, ly - 4, paint);
            Text(canvas, s.Name, box.Left + 30, ly, 12);
            ly += 17;
        }
    }

    /// <summary>How much of the data a legend at <paramref name="box"/> would cover: the values, and points along each line between them, inside it.</summary>
    internal static int Hidden(SKRect box, IReadOnlyList<List<SKPoint?>> placed)
    {
        int count = 0;
        foreach (var series in placed)
            for (int i = 0; i < series.Count; i++)
            {
                if (series[i] is not { } a) continue;
                if (box.Contains(a)) count += 4;
                if (i + 1 < series.Count && series[i + 1] is { } b)
                    for (int t = 1; t < 24; t++)
                        if (box.Contains(new SKPoint(a.X + (b.X - a.X) * t / 24, a.Y + (b.Y - a.Y) * t / 24))) count++;
            }
        return count;
    }

    static void Draw(SKCanvas canvas, SKRect area, Heatmap h)
    {
        var plot = PlotArea(area, right: 78);
        int rows = h.Values.GetLength(0), cols = h.Values.GetLength(1);
        var finite = h.Values.Cast<float>().Where(float.IsFinite).ToList();
        if (finite.Count == 0) return;
        var (lo, hi) = h.ColorRange ?? (finite.Min(), finite.Max());
        if (hi <= lo) hi = lo + 1;
        using var bitmap = new SKBitmap(cols, rows);
        for (int r = 0; r < rows; r++)
            for (int col = 0; col < cols; col++)
                bitmap.SetPixel(col, rows - 1 - r, Viridis((h.Values[r, col] - lo) / (hi - lo))); // row 0 at the bottom
        using var image = SKImage.FromBitmap(bitmap);
        canvas.DrawImage(image, plot, new SKSamplingOptions(SKFilterMode.Nearest));
        Frame(canvas, area, plot, h.Title, h.XLabel, h.YLabel, h.XRange, h.YRange, false);
        // Colour bar.
        var bar = new SKRect(plot.Right + 12, plot.Top, plot.Right + 26, plot.Bottom);
        for (int i = 0; i < (int)bar.Height; i++)
        {
            using var p = new SKPaint { Color = Viridis(1 - i / bar.Height) };
            canvas.DrawRect(bar.Left, bar.Top + i, bar.Width, 1, p);
        }
        foreach (var t in Ticks(lo, hi, 5))
        {
            float py = bar.Bottom - (float)((t - lo) / (hi - lo)) * bar.Height;
            Text(canvas, Format(t), bar.Right + 4, py + 4, 11);
        }
    }

    static void Draw(SKCanvas canvas, SKRect area, ConfusionMatrix m)
    {
        int k = m.Classes.Count;
        float labelW = 12 + 7.2f * Math.Min(22, m.Classes.Max(c => c.Length));
        float left = area.Left + labelW + 28, top = area.Top + 44;
        float size = Math.Min(area.Right - 16 - left, area.Bottom - labelW - 30 - top);
        float cell = size / k;
        long total = 0, right = 0;
        for (int i = 0; i < k; i++) for (int j = 0; j < k; j++) { total += m.Counts[i, j]; if (i == j) right += m.Counts[i, j]; }
        Text(canvas, $"{m.Title}: accuracy {(total == 0 ? 0 : 100.0 * right / total):0.00}%", area.MidX, area.Top + 24, 15, SKTextAlign.Center, bold: true);
        float fontSize = Math.Clamp(cell * 0.3f, 7, 13);
        for (int i = 0; i < k; i++)
        {
            long row = 0;
            for (int j = 0; j < k; j++) row += m.Counts[i, j];
            for (int j = 0; j < k; j++)
            {
                double f = row == 0 ? 0 : (double)m.Counts[i, j] / row;
                var rect = SKRect.Create(left + j * cell, top + i * cell, cell, cell);
                // White to dark blue by the share of the row; the diagonal in blue, errors in red.
                var c = i == j ? new SKColor((byte)(255 - 225 * f), (byte)(255 - 170 * f), (byte)(255 - 75 * f)) : new SKColor((byte)(255 - 40 * Math.Sqrt(f)), (byte)(255 - 200 * Math.Sqrt(f)), (byte)(255 - 200 * Math.Sqrt(f)));
                using var paint = new SKPaint { Color = c };
                canvas.DrawRect(rect, paint);
                if (m.Counts[i, j] > 0)
                    Text(canvas, m.Counts[i, j].ToString(CultureInfo.InvariantCulture), rect.MidX, rect.MidY + fontSize / 3, fontSize, SKTextAlign.Center,
                        color: i == j && f > 0.5 ? SKColors.White : SKColors.Black);
            }
            Text(canvas, Shorten(m.Classes[i]), left - 6, top + (i + 0.5f) * cell + 4, 12, SKTextAlign.Right);
            Text(canvas, Shorten(m.Classes[i]), left + (i + 0.5f) * cell + 4, top + k * cell + 8, 12, SKTextAlign.Right, rotate: -50);
        }
        using var grid = new SKPaint { Color = new SKColor(0xcc, 0xcc, 0xcc), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        for (int i = 0; i <= k; i++)
        {
            canvas.DrawLine(left, top + i * cell, left + k * cell, top + i * cell, grid);
            canvas.DrawLine(left + i * cell, top, left + i * cell, top + k * cell, grid);
        }
        Text(canvas, "true class", area.Left + 14, top + k * cell / 2, 13, SKTextAlign.Center, rotate: -90);
        Text(canvas, "predicted class", left + k * cell / 2, area.Bottom - 8, 13, SKTextAlign.Center);
    }

    static void Draw(SKCanvas canvas, SKRect area, BarChart b)
    {
        var plot = PlotArea(area);
        var values = b.Series.SelectMany(s => s.Values).Where(double.IsFinite).ToList();
        (double Lo, double Hi) y = b.YRange ?? (Math.Min(0, values.DefaultIfEmpty(0).Min()), Math.Max(values.DefaultIfEmpty(1).Max() * 1.1, 1e-9));
        Text(canvas, b.Title, plot.MidX, area.Top + 24, 15, SKTextAlign.Center, bold: true);
        Text(canvas, b.YLabel, area.Left + 16, plot.MidY, 13, SKTextAlign.Center, rotate: -90);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(0xe4, 0xe4, 0xe4), StrokeWidth = 1 };
        float Py(double v) => plot.Bottom - (float)((Math.Clamp(v, y.Lo, y.Hi) - y.Lo) / (y.Hi - y.Lo)) * plot.Height;
        foreach (var t in Ticks(y.Lo, y.Hi))
        {
            canvas.DrawLine(plot.Left, Py(t), plot.Right, Py(t), grid);
            Text(canvas, Format(t), plot.Left - 6, Py(t) + 4, 11, SKTextAlign.Right);
        }
        int groups = b.Groups.Count, series = Math.Max(1, b.Series.Count);
        float slot = plot.Width / Math.Max(1, groups), bar = slot * 0.8f / series;
        for (int g = 0; g < groups; g++)
        {
            float x0 = plot.Left + g * slot + slot * 0.1f;
            for (int s = 0; s < b.Series.Count; s++)
            {
                double v = g < b.Series[s].Values.Count ? b.Series[s].Values[g] : double.NaN;
                if (!double.IsFinite(v)) continue;
                using var paint = new SKPaint { Color = b.Series[s].Color, IsAntialias = true };
                float top = Py(Math.Max(v, 0)), bottom = Py(Math.Min(v, 0));
                canvas.DrawRect(new SKRect(x0 + s * bar + 1, top, x0 + (s + 1) * bar - 1, Math.Max(bottom, top + 1)), paint);
                Text(canvas, Format(Math.Round(v, 2)), x0 + (s + 0.5f) * bar, top - 3, 10, SKTextAlign.Center);
            }
            Text(canvas, b.Groups[g], plot.Left + (g + 0.5f) * slot, plot.Bottom + 18, 12, SKTextAlign.Center);
        }
        using (var dashed = new SKPaint { Color = new SKColor(0x55, 0x55, 0x55), StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke, PathEffect = SKPathEffect.CreateDash([6, 4], 0) })
            foreach (var (ly, label) in b.Lines)
            {
                canvas.DrawLine(plot.Left, Py(ly), plot.Right, Py(ly), dashed);
                Text(canvas, label, plot.Left + 4, Py(ly) - 4, 11, color: new SKColor(0x55, 0x55, 0x55));
            }
        canvas.DrawRect(plot, axis);
        // Legend below the axis.
        float lx = plot.Left;
        foreach (var s in b.Series)
        {
            using var paint = new SKPaint { Color = s.Color };
            canvas.DrawRect(SKRect.Create(lx, area.Bottom - 22, 12, 12), paint);
            Text(canvas, s.Name, lx + 16, area.Bottom - 12, 12);
            lx += 24 + 6.8f * s.Name.Length;
        }
    }

    static string Shorten(string s) => s.Length <= 22 ? s : s[..21] + "…";

    /// <summary>An approximation of matplotlib's viridis colour map, t in 0..1.</summary>
    public static SKColor Viridis(double t)
    {
        if (!double.IsFinite(t)) return SKColors.LightGray;
        t = Math.Clamp(t, 0, 1);
        double[] stops = ViridisStops;
        double f = t * 9;
        int i = Math.Min(8, (int)f);
        double u = f - i;
        byte C(int k) => (byte)Math.Round(255 * (stops[i * 3 + k] * (1 - u) + stops[(i + 1) * 3 + k] * u));
        return new SKColor(C(0), C(1), C(2));
    }

    static readonly double[] ViridisStops = [0.267, 0.005, 0.329, 0.283, 0.141, 0.458, 0.254, 0.265, 0.530, 0.164, 0.471, 0.558, 0.128, 0.567, 0.551, 0.135, 0.659, 0.518, 0.267, 0.749, 0.441, 0.478, 0.821, 0.318, 0.741, 0.873, 0.150, 0.993, 0.906, 0.144];
}
