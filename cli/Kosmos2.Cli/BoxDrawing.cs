using SkiaSharp;

namespace Kosmos2.Cli;

/// <summary>Draws each entity's boxes and phrase onto the original image, like the official demo's picture.</summary>
internal static class BoxDrawing
{
    private static readonly SKColor[] Palette =
    [
        new(230, 25, 75), new(60, 180, 75), new(0, 130, 200), new(245, 130, 48),
        new(145, 30, 180), new(70, 240, 240), new(240, 50, 230), new(210, 245, 60),
    ];

    /// <summary>
    /// DejaVu Sans Bold, embedded (Fonts/, Bitstream Vera licence): <c>SKTypeface.Default</c> has no glyphs where
    /// SkiaSharp finds no system fonts, and the labels then came out as empty boxes.
    /// </summary>
    private static readonly Lazy<SKTypeface> LabelTypeface = new(() =>
    {
        using var stream = typeof(BoxDrawing).Assembly.GetManifestResourceStream("Kosmos2.Cli.LabelFont.ttf")
                           ?? throw new InvalidOperationException("The label font is not embedded in kosmos2.");
        using var data = SKData.Create(stream);
        return SKTypeface.FromData(data) ?? throw new InvalidOperationException("The embedded label font cannot be read.");
    });

    /// <summary>Stroke width in pixels for an image: 1/150 of its shorter side, at least 2.</summary>
    public static int StrokeWidth(int width, int height) => Math.Max(2, Math.Min(width, height) / 150);

    public static SKColor ColorOf(int entityIndex) => Palette[entityIndex % Palette.Length];

    /// <summary>Writes <paramref name="outPath"/> (PNG): the image with every entity's pixel boxes outlined and labelled.</summary>
    public static void Draw(byte[] imageBytes, IReadOnlyList<ReportEntity> entities, string outPath)
    {
        using var original = SKBitmap.Decode(imageBytes) ?? throw new UsageException("The image cannot be decoded for drawing.");
        using var bitmap = original.Copy(SKColorType.Rgba8888);
        using var canvas = new SKCanvas(bitmap);
        var stroke = StrokeWidth(bitmap.Width, bitmap.Height);
        using var font = new SKFont(LabelTypeface.Value, Math.Max(12, stroke * 6));
        for (var i = 0; i < entities.Count; i++)
        {
            var color = ColorOf(i);
            using var outline = new SKPaint { Color = color, Style = SKPaintStyle.Stroke, StrokeWidth = stroke, IsAntialias = false };
            using var fill = new SKPaint { Color = color, Style = SKPaintStyle.Fill };
            using var textPaint = new SKPaint { Color = SKColors.White, IsAntialias = true };
            foreach (var box in entities[i].PixelBoxes ?? [])
            {
                // The stroke is centred on the path: inset by half a stroke so the outline stays inside the box.
                var half = stroke / 2f;
                var rect = new SKRect((float)box[0] + half, (float)box[1] + half, (float)box[2] - half, (float)box[3] - half);
                canvas.DrawRect(rect, outline);
                var label = entities[i].Phrase;
                var textWidth = font.MeasureText(label);
                var labelTop = Math.Max(0, rect.Top - font.Size - 4);
                canvas.DrawRect(new SKRect(rect.Left - half, labelTop, rect.Left - half + textWidth + 6, labelTop + font.Size + 4), fill);
                canvas.DrawText(label, rect.Left - half + 3, labelTop + font.Size, SKTextAlign.Left, font, textPaint);
            }
        }
        canvas.Flush();
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(outPath);
        data.SaveTo(file);
    }
}
