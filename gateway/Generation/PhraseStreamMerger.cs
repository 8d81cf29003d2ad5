using System.Text;
using System.Threading.Channels;
using Grpc.Core;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Gateway.Generation;

/// <summary>
/// Phrase grounding of several phrases: one generation per phrase, run together by the decoder (many producers), one
/// writer to the client. Phrase k's messages go out once phrases 0…k−1 are complete, placed in the merged text
/// (<see cref="MergedText"/>), so entities stream as they complete, as in every other task. Nothing goes out before
/// every phrase has been taken by a decoder: a refusal must come before any message, so the client can retry the call.
/// </summary>
public sealed class PhraseStreamMerger
{
    private readonly PhraseWriter[] _phrases;

    public PhraseStreamMerger(int phrases) => _phrases = Enumerable.Range(0, phrases).Select(_ => new PhraseWriter()).ToArray();

    /// <summary>Where phrase <paramref name="index"/>'s generation writes its messages.</summary>
    public IServerStreamWriter<GenerateResponse> Writer(int index) => _phrases[index];

    /// <summary>Phrase <paramref name="index"/>'s generation ended well; its messages are all written.</summary>
    public void Complete(int index) => _phrases[index].Complete();

    /// <summary>Writes the phrases' messages to <paramref name="output"/> in phrase order, until all are complete.</summary>
    public async Task PumpAsync(IServerStreamWriter<GenerateResponse> output, CancellationToken cancellationToken)
    {
        await Task.WhenAll(_phrases.Select(p => p.Started)).WaitAsync(cancellationToken).ConfigureAwait(false);
        var text = new StringBuilder(); // the merged text sent so far
        var entities = new List<Entity>(); // the entities sent so far, in merged coordinates
        foreach (var phrase in _phrases)
        {
            var before = (Text: text.ToString() + MergedText.Prefix(text.Length), Entities: entities.ToList());
            var offset = (uint)before.Text.EnumerateRunes().Count();
            if (before.Text.Length > text.Length)
            {
                text.Append(MergedText.Separator);
                await output.WriteAsync(new GenerateResponse { Delta = new TextDelta { Text = MergedText.Separator } }, cancellationToken).ConfigureAwait(false);
            }
            await foreach (var message in phrase.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (message.Restart is not null)
                {
                    // The phrase's own text starts again: so does the client's, which gets the earlier phrases back first.
                    await output.WriteAsync(message, cancellationToken).ConfigureAwait(false);
                    text.Clear().Append(before.Text);
                    entities = before.Entities.ToList();
                    await ResendAsync(output, before.Text, before.Entities, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (message.Delta is { } delta)
                {
                    text.Append(delta.Text);
                }
                if (message.Entity is { } entity)
                {
                    entities.Add(entity.ShiftedBy(offset));
                }
                await output.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task ResendAsync(IServerStreamWriter<GenerateResponse> output, string text, List<Entity> entities, CancellationToken cancellationToken)
    {
        if (text.Length > 0)
        {
            await output.WriteAsync(new GenerateResponse { Delta = new TextDelta { Text = text } }, cancellationToken).ConfigureAwait(false);
        }
        foreach (var entity in entities)
        {
            await output.WriteAsync(new GenerateResponse { Entity = entity.Clone() }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One phrase's messages, buffered until the merger reaches it (unbounded: a phrase's stream is short).</summary>
    private sealed class PhraseWriter : IServerStreamWriter<GenerateResponse>
    {
        private readonly Channel<GenerateResponse> _messages = Channel.CreateUnbounded<GenerateResponse>(new UnboundedChannelOptions { SingleReader = true });
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public WriteOptions? WriteOptions { get; set; }

        /// <summary>The phrase's first message was written (so a decoder took it), or it ended well.</summary>
        public Task Started => _started.Task;

        public ChannelReader<GenerateResponse> Reader => _messages.Reader;

        public Task WriteAsync(GenerateResponse message)
        {
            _messages.Writer.TryWrite(message);
            _started.TrySetResult();
            return Task.CompletedTask;
        }

        public Task WriteAsync(GenerateResponse message, CancellationToken cancellationToken) => WriteAsync(message);

        public void Complete()
        {
            _messages.Writer.TryComplete();
            _started.TrySetResult();
        }
    }
}
