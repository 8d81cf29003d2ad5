using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Grounding;

namespace Kosmos2.Gateway.Generation;

/// <summary>Processing's grounded entities → the public proto, with boxes in both frames.</summary>
public static class EntityMapping
{
    /// <param name="boxLogprobs">Per box, the mean log-probability of its patch tokens (null or a null entry = not known).</param>
    public static Entity ToProto(GroundedEntity entity, int imageWidth, int imageHeight, IReadOnlyList<float?>? boxLogprobs = null)
    {
        var proto = new Entity { Phrase = entity.Phrase, SpanStart = (uint)Math.Max(0, entity.SpanStart), SpanEnd = (uint)Math.Max(0, entity.SpanEnd) };
        for (var i = 0; i < entity.Boxes.Count; i++)
        {
            var box = entity.Boxes[i];
            var pixels = PatchIndexCodec.ToPixels(box, imageWidth, imageHeight);
            proto.Boxes.Add(new GroundedBox
            {
                Normalized = new Box { X1 = box.X1, Y1 = box.Y1, X2 = box.X2, Y2 = box.Y2 },
                Pixels = new Box { X1 = pixels.X1, Y1 = pixels.Y1, X2 = pixels.X2, Y2 = pixels.Y2 },
                PatchTopLeft = (uint)entity.PatchBoxes[i].Ul,
                PatchBottomRight = (uint)entity.PatchBoxes[i].Lr,
            });
            if (boxLogprobs is not null && i < boxLogprobs.Count && boxLogprobs[i] is { } logprob)
            {
                proto.Boxes[i].MeanLogprob = logprob;
            }
        }
        return proto;
    }
}
