namespace Kosmos2.Processing.Grounding;

/// <summary>A box <c>(x1, y1, x2, y2)</c> in [0, 1] relative to the original image's width and height.</summary>
public readonly record struct NormalizedBox(double X1, double Y1, double X2, double Y2);

/// <summary>A box in pixels of an image, <c>(x1, y1)</c> upper-left, <c>(x2, y2)</c> lower-right, exclusive.</summary>
public readonly record struct PixelBox(double X1, double Y1, double X2, double Y2);
