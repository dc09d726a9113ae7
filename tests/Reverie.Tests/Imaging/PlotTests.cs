using Reverie.Imaging;
using SkiaSharp;

namespace Reverie.Tests.Imaging;

/// <summary>What the charts of reports draw: values on the frame stay visible, and the legend does not hide the data.</summary>
public class PlotTests
{
    // A 520×400 panel without a title: the plot spans x 70..500 and y 36..348.
    const float Left = 70, Top = 36, Right = 500, Bottom = 348;

    static SKBitmap Draw(params Series[] series) =>
        SKBitmap.Decode(Plot.Render([new LineChart("t", "x", "y", series) { YRange = (0, 1) }], 1));

    static bool Near(SKColor a, SKColor b) => Math.Abs(a.Red - b.Red) + Math.Abs(a.Green - b.Green) + Math.Abs(a.Blue - b.Blue) < 60;

    /// <summary>Whether a pixel within one of (x, y) has colour <paramref name="c"/> (an antialiased line covers its centre pixel only in part).</summary>
    static bool Around(SKBitmap b, float x, float y, SKColor c)
    {
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
                if (Near(b.GetPixel((int)Math.Round(x) + dx, (int)Math.Round(y) + dy), c)) return true;
        return false;
    }

    /// <summary>
    /// A line with markers from (0, 0) to (1, 1): both markers are drawn whole although they sit on the frame's corners
    /// (the chart of an attack benchmark ends at the largest eps, often at accuracy 0), and the line is drawn between them.
    /// </summary>
    [Fact]
    public void MarkersOnTheFrameAreDrawnWholeAndJoinedByTheLine()
    {
        var red = Plot.Palette[1];
        using var bitmap = Draw(new Series("s", [0, 1], [0, 1], red, Markers: true));
        Assert.True(Near(bitmap.GetPixel((int)Right + 2, (int)Top), red), "the marker at the top right corner is cut off by the frame");
        Assert.True(Near(bitmap.GetPixel((int)Left, (int)Bottom + 2), red), "the marker at the bottom left corner is cut off by the frame");
        float x = Left + 0.5f * (Right - Left), y = Bottom - 0.5f * (Bottom - Top);
        Assert.True(Around(bitmap, x, y, red), "no line between the markers");
        // Dots alone (Points) stay dots: nothing between them.
        using var dots = Draw(new Series("s", [0, 1], [0, 1], red, Points: true));
        Assert.False(Around(dots, x, y, red));
    }

    /// <summary>
    /// A line up to the top right corner, where the legend used to sit: the legend moves to a corner the data leave free
    /// (here the top left), so the line near the corner is drawn at full strength and the legend's swatch is where it went.
    /// </summary>
    [Fact]
    public void TheLegendGoesWhereItHidesNoData()
    {
        var blue = Plot.Palette[0];
        using var bitmap = Draw(new Series("rising", [0, 1], [0, 1], blue), new Series("flat", [0, 1], [0.5, 0.5], Plot.Palette[2]));
        // The rising line at 90% of its way, inside where the top-right legend box would be.
        float x = Left + 0.9f * (Right - Left), y = Bottom - 0.9f * (Bottom - Top);
        Assert.True(Around(bitmap, x, y, blue), "the line is hidden near the top right corner");
        // The first swatch of a legend in the top left corner: 18 px of the first series' colour.
        Assert.True(Near(bitmap.GetPixel((int)Left + 4 + 15, (int)Top + 4 + 8), blue), "the legend is not in the top left corner");
    }
}
