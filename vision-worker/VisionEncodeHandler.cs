using System.Diagnostics;
using System.Security.Cryptography;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Processing.Images;
using Kosmos2.ServiceDefaults;
using Kosmos2.VisionWorker.Caching;
using Kosmos2.VisionWorker.Encoding;

namespace Kosmos2.VisionWorker;

/// <summary>
/// One encode request end to end: validate → SHA-256 → cache (local LRU, then Redis) → on a miss, one
/// decode + preprocess + batched forward per image however many requests ask for it at once (single
/// flight) → store → reply. Decode + preprocess run on request threads but only inside a
/// <see cref="DecodeGate"/> slot, which bounds their memory; only <see cref="EncoderLoop"/> touches tensors.
/// </summary>
public sealed class VisionEncodeHandler(
    EncoderLoop encoder,
    DecodeGate decodes,
    EmbeddingCache cache,
    VisionWorkerOptions options,
    ImageLimits limits,
    TensorDType storeDType)
{
    private readonly SingleFlight<ComputeResult> _singleFlight = new();

    public async Task<EncodeResponse> EncodeAsync(EncodeRequest request, CancellationToken cancellationToken)
    {
        if (!encoder.Ready.IsCompletedSuccessfully)
        {
            RpcErrors.Unavailable("The vision model is still loading: retry shortly.");
        }
        var model = encoder.Ready.Result;
        var image = request.Image.Memory;
        if (image.IsEmpty && string.IsNullOrEmpty(request.Sha256))
        {
            RpcErrors.InvalidArgument("Send the image bytes in `image`, or the SHA-256 of an image encoded before in `sha256`.");
        }
        if (image.Length > limits.MaxBytes)
        {
            RpcErrors.InvalidArgument($"`image` is {image.Length:N0} bytes; the limit is {limits.MaxBytes:N0} (Vision:MaxImageBytes).");
        }
        var sha256 = image.IsEmpty ? NormalizeSha(request.Sha256) : Convert.ToHexStringLower(SHA256.HashData(image.Span));
        if (!image.IsEmpty && !string.IsNullOrEmpty(request.Sha256) && NormalizeSha(request.Sha256) != sha256)
        {
            RpcErrors.InvalidArgument($"`sha256` {request.Sha256} does not match the image bytes (their SHA-256 is {sha256}).");
        }
        var key = CacheKey(model.Identity, request.CacheSalt, sha256);

        var cacheWatch = Stopwatch.StartNew();
        var (cached, tier) = await cache.GetAsync(key, storeDType, model.Rows, model.Columns).ConfigureAwait(false);
        var cacheMs = cacheWatch.Elapsed.TotalMilliseconds;
        if (cached is not null)
        {
            return Reply(cached, key, sha256, hit: true, new EncodeTimings { CacheMs = cacheMs });
        }
        if (image.IsEmpty)
        {
            RpcErrors.NotFound($"No cached embeddings for image {sha256}: send the image bytes.");
        }

        var (computed, _) = await _singleFlight.RunAsync(key, () => ComputeAsync(request.Image.Memory, key, model, cancellationToken)).ConfigureAwait(false);
        var timings = computed.Timings.Clone();
        timings.CacheMs += cacheMs;
        return Reply(computed.Embeddings, key, sha256, hit: false, timings);
    }

    /// <summary>The cache key: prefix + model identity + preprocessing version + salt + content hash.</summary>
    public string CacheKey(ModelIdentity identity, string salt, string sha256)
    {
        var saltPart = string.IsNullOrEmpty(salt) ? "-" : Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(salt)))[..16];
        return $"{options.Cache.KeyPrefix}{identity.ModelId}:{identity.Fingerprint}:{ImagePreprocessor.PreprocessingVersion}:{storeDType}:{saltPart}:{sha256}";
    }

    private async Task<ComputeResult> ComputeAsync(ReadOnlyMemory<byte> bytes, string key, IVisionEncoder model, CancellationToken cancellationToken)
    {
        var timings = new EncodeTimings();
        var watch = Stopwatch.StartNew();
        float[] pixels;
        int width, height;
        // Pixel buffers exist only inside a slot; waiting for one counts as queueing.
        using (await decodes.EnterAsync(cancellationToken).ConfigureAwait(false))
        {
            timings.QueueMs = watch.Elapsed.TotalMilliseconds;
            pixels = DecodeAndPreprocess(bytes.Span, timings, out width, out height);
        }

        // The forward is shared by everyone waiting on this key: a caller's cancellation must not cancel it.
        if (!encoder.TryEnqueue(pixels, CancellationToken.None, out var pending))
        {
            RpcErrors.ResourceExhausted($"The vision encoder queue is full ({encoder.QueueLength} images waiting): retry later or on another worker.");
        }
        var encoded = await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
        timings.QueueMs += encoded.QueueMs;
        timings.ForwardMs = encoded.ForwardMs;

        var embeddings = new CachedEmbeddings(model.OutputDType, model.Rows, model.Columns, width, height, encoded.Embeddings);
        embeddings = EmbeddingDTypes.Convert(embeddings, storeDType);
        watch.Restart();
        await cache.SetAsync(key, embeddings).ConfigureAwait(false);
        timings.CacheMs = watch.Elapsed.TotalMilliseconds;
        return new ComputeResult(embeddings, timings);
    }

    /// <summary>
    /// Synchronous so that no pixel buffer can outlive the slot: an async method's locals may be hoisted into its
    /// state machine (always in Debug builds) and stay reachable until the forward ends.
    /// </summary>
    private float[] DecodeAndPreprocess(ReadOnlySpan<byte> bytes, EncodeTimings timings, out int width, out int height)
    {
        var watch = Stopwatch.StartNew();
        DecodedImage decoded;
        try
        {
            decoded = ImageDecoder.Decode(bytes, limits);
        }
        catch (InvalidImageException ex)
        {
            RpcErrors.InvalidArgument($"`image` cannot be used: {ex.Message}");
            throw; // unreachable
        }
        timings.DecodeMs = watch.Elapsed.TotalMilliseconds;
        watch.Restart();
        (width, height) = (decoded.Width, decoded.Height);
        var pixels = ImagePreprocessor.Preprocess(decoded).PixelValues;
        timings.PreprocessMs = watch.Elapsed.TotalMilliseconds;
        return pixels;
    }

    private static EncodeResponse Reply(CachedEmbeddings embeddings, string key, string sha256, bool hit, EncodeTimings timings)
    {
        var tensor = new TensorBytes { Dtype = embeddings.DType, Data = Google.Protobuf.ByteString.CopyFrom(embeddings.Data) };
        tensor.Shape.Add((uint)embeddings.Rows);
        tensor.Shape.Add((uint)embeddings.Columns);
        return new EncodeResponse
        {
            Embeddings = tensor,
            CacheKey = key,
            CacheHit = hit,
            Sha256 = sha256,
            Timings = timings,
            ImageWidth = (uint)embeddings.ImageWidth,
            ImageHeight = (uint)embeddings.ImageHeight,
        };
    }

    private static string NormalizeSha(string sha)
    {
        var lower = sha.Trim().ToLowerInvariant();
        if (lower.Length != 64 || !lower.All(Uri.IsHexDigit))
        {
            RpcErrors.InvalidArgument($"`sha256` must be 64 hex digits (got '{sha}').");
        }
        return lower;
    }

    private sealed record ComputeResult(CachedEmbeddings Embeddings, EncodeTimings Timings);
}
