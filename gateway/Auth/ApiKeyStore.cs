using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Auth;

/// <summary>
/// The accepted API keys, from configuration and the optional key file, held only as SHA-256 hashes.
/// A presented key is hashed and compared with every stored hash by
/// <see cref="CryptographicOperations.FixedTimeEquals"/>, without stopping at the first match: the time taken says
/// nothing about how much of a key was right (a dictionary lookup on the raw key would compare it char by char).
/// Hashing first also makes every comparison the same length.
/// </summary>
public sealed partial class ApiKeyStore : IDisposable
{
    private readonly IOptionsMonitor<AuthOptions> _options;
    private readonly ILogger<ApiKeyStore> _logger;
    private readonly TimeProvider _time;
    private readonly IDisposable? _optionsSubscription;
    private readonly Lock _reloadLock = new();

    private volatile KeySet _configKeys;
    private volatile KeySet _fileKeys = KeySet.Empty;
    private byte[]? _fileContentHash;
    private long _nextFileCheck;

    private readonly TenantCacheSalts _salts;

    public ApiKeyStore(IOptionsMonitor<AuthOptions> options, TenantCacheSalts salts, ILogger<ApiKeyStore> logger, TimeProvider time)
    {
        _options = options;
        _salts = salts;
        _logger = logger;
        _time = time;
        _configKeys = Build(options.CurrentValue.ApiKeys, "configuration");
        // Decided once, from what was configured (a refused short key counts): a configuration reload that drops every
        // key, or a key too short to accept, must lock the gateway, not open it.
        IsOpen = options.CurrentValue.ApiKeys.Count == 0 && string.IsNullOrWhiteSpace(options.CurrentValue.ApiKeysFile);
        _optionsSubscription = options.OnChange(o => _configKeys = Build(o.ApiKeys, "configuration"));
        ReloadFileIfChanged(force: true);
    }

    /// <summary>True when, at startup, no key and no key file was configured: every call is let in as tenant <c>local</c>.</summary>
    public bool IsOpen { get; }

    /// <summary>Number of keys accepted now (configuration + key file).</summary>
    public int KeyCount
    {
        get
        {
            ReloadFileIfChanged(force: false);
            return _configKeys.Entries.Length + _fileKeys.Entries.Length;
        }
    }

    /// <summary>The tenant of <paramref name="presentedKey"/>, or null when no configured key matches or the key has expired.</summary>
    public Tenant? Authenticate(string presentedKey)
    {
        ReloadFileIfChanged(force: false);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(presentedKey), hash);
        var match = Find(_configKeys, hash, null);
        match = Find(_fileKeys, hash, match);
        if (match?.ExpiresAt is { } expiry && _time.GetUtcNow() >= expiry)
        {
            LogExpiredKey(_logger, match.Tenant, expiry);
            return null;
        }
        return match is null ? null : _salts.TenantOf(match.Tenant, match.Quota ?? _options.CurrentValue.DefaultQuota);
    }

    /// <summary>The tenant of every call while <see cref="IsOpen"/>.</summary>
    public Tenant OpenTenant => _salts.TenantOf(Tenant.LocalId, _options.CurrentValue.DefaultQuota);

    public void Dispose() => _optionsSubscription?.Dispose();

    private static KeyEntry? Find(KeySet set, ReadOnlySpan<byte> hash, KeyEntry? found)
    {
        // Every entry is compared, match or not, so the time depends only on the number of keys.
        foreach (var entry in set.Entries)
        {
            if (CryptographicOperations.FixedTimeEquals(entry.Hash, hash) && found is null)
            {
                found = entry;
            }
        }
        return found;
    }

    /// <summary>
    /// Re-reads the key file when its content changed, checked at most every <see cref="AuthOptions.ApiKeysFileCheckSeconds"/>.
    /// The content is hashed, not the file's modification time: a Kubernetes Secret is mounted as
    /// <c>keys.json → ..data/keys.json</c>, and the kubelet updates it by swapping the <c>..data</c> symlink to a new
    /// folder, so neither the path's own time nor its size need change when a key is revoked.
    /// </summary>
    private void ReloadFileIfChanged(bool force)
    {
        var options = _options.CurrentValue;
        var path = options.ApiKeysFile;
        if (string.IsNullOrWhiteSpace(path))
        {
            _fileKeys = KeySet.Empty;
            return;
        }
        var now = _time.GetTimestamp();
        if (!force && now < Interlocked.Read(ref _nextFileCheck))
        {
            return;
        }
        if (!_reloadLock.TryEnter())
        {
            return; // another call is reloading; this one uses the current keys
        }
        try
        {
            Interlocked.Exchange(ref _nextFileCheck, now + (long)(options.ApiKeysFileCheckSeconds * _time.TimestampFrequency));
            byte[] content;
            try
            {
                content = File.ReadAllBytes(path); // follows symlinks to the current target
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                // Fail closed: a configured but missing key file must not open the gateway.
                if (force || _fileContentHash is not null || _fileKeys.Entries.Length > 0)
                {
                    LogKeyFileMissing(_logger, path);
                }
                _fileKeys = KeySet.Empty;
                _fileContentHash = null;
                return;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogKeyFileUnreadable(_logger, ex, path); // keep the last good keys; try again at the next check
                return;
            }
            var contentHash = SHA256.HashData(content);
            if (!force && _fileContentHash is not null && contentHash.AsSpan().SequenceEqual(_fileContentHash))
            {
                return;
            }
            try
            {
                var entries = JsonSerializer.Deserialize<List<ApiKeyOptions>>(content, JsonOptions) ?? [];
                _fileKeys = Build(entries, path);
                _fileContentHash = contentHash;
                LogKeyFileLoaded(_logger, path, _fileKeys.Entries.Length);
            }
            catch (JsonException ex)
            {
                // Keep the last good keys: a half-written file during a Secret update must not lock everyone out.
                LogKeyFileUnreadable(_logger, ex, path);
            }
        }
        finally
        {
            _reloadLock.Exit();
        }
    }

    private KeySet Build(IEnumerable<ApiKeyOptions> keys, string source)
    {
        var entries = new List<KeyEntry>();
        foreach (var key in keys)
        {
            if (string.IsNullOrEmpty(key.Key) || string.IsNullOrWhiteSpace(key.Tenant))
            {
                LogIncompleteKey(_logger, source);
                continue;
            }
            if (key.Key.Length < AuthOptions.MinKeyLength)
            {
                LogShortKey(_logger, key.Tenant, source, key.Key.Length, AuthOptions.MinKeyLength);
                continue;
            }
            entries.Add(new KeyEntry(SHA256.HashData(Encoding.UTF8.GetBytes(key.Key)), key.Tenant.Trim(), key.ExpiresAt, key.Quota));
        }
        return new KeySet([.. entries]);
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNameCaseInsensitive = true, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    private sealed record KeyEntry(byte[] Hash, string Tenant, DateTimeOffset? ExpiresAt, Quotas.TenantQuota? Quota);

    private sealed record KeySet(KeyEntry[] Entries)
    {
        public static readonly KeySet Empty = new([]);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "An API key entry in {Source} has no key or no tenant and is ignored.")]
    private static partial void LogIncompleteKey(ILogger logger, string source);

    [LoggerMessage(Level = LogLevel.Error, Message = "An API key of tenant {Tenant} in {Source} has {Length} characters, fewer than the {Minimum} required, and is refused.")]
    private static partial void LogShortKey(ILogger logger, string tenant, string source, int length, int minimum);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An expired API key of tenant {Tenant} (expired {ExpiresAt:o}) was refused.")]
    private static partial void LogExpiredKey(ILogger logger, string tenant, DateTimeOffset expiresAt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {Count} API keys from {Path}.")]
    private static partial void LogKeyFileLoaded(ILogger logger, string path, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "The API key file {Path} does not exist: no key from it is accepted until it appears.")]
    private static partial void LogKeyFileMissing(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "The API key file {Path} could not be read; the keys loaded before stay in use.")]
    private static partial void LogKeyFileUnreadable(ILogger logger, Exception exception, string path);
}
