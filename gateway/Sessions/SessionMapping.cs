using Google.Protobuf.WellKnownTypes;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Gateway.Sessions;

/// <summary>Stored session → public <c>kosmos2.v1.Session</c>.</summary>
public static class SessionMapping
{
    public static Session ToProto(this SessionRecord record)
    {
        var session = new Session
        {
            Id = record.Id,
            ImageSha256 = record.Image.Sha256,
            ImageWidth = (uint)record.Image.Width,
            ImageHeight = (uint)record.Image.Height,
            ContextTokens = (uint)record.ContextTokenIds.Count,
            CreatedAt = Timestamp.FromDateTimeOffset(record.CreatedAt),
            ExpiresAt = Timestamp.FromDateTimeOffset(record.ExpiresAt),
            Options = record.Options.Clone(),
        };
        foreach (var turn in record.Turns)
        {
            var proto = new Turn
            {
                Text = turn.Text,
                Answer = turn.Answer,
                PromptTokens = (uint)turn.PromptTokens,
                GeneratedTokens = (uint)turn.GeneratedTokens,
            };
            proto.Regions.Add(turn.Regions.Select(r => r.Clone()));
            proto.Entities.Add(turn.Entities.Select(e => e.Clone()));
            session.Turns.Add(proto);
        }
        return session;
    }
}
