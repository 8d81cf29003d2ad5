namespace Kosmos2.Cli;

/// <summary>
/// Parsed command-line arguments: <c>--name value</c> options, <c>--flag</c> switches and positionals.
/// Small on purpose: the commands are few and their help is written by hand.
/// </summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private CommandLine(IReadOnlyCollection<string> flagNames, string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
            {
                var name = arg[2..];
                var eq = name.IndexOf('=', StringComparison.Ordinal);
                if (eq >= 0)
                {
                    Add(name[..eq], name[(eq + 1)..]);
                }
                else if (flagNames.Contains(name))
                {
                    _flags.Add(name);
                }
                else if (i + 1 < args.Length)
                {
                    Add(name, args[++i]);
                }
                else
                {
                    throw new UsageException($"--{name} needs a value.");
                }
            }
            else
            {
                Positionals.Add(arg);
            }
        }
    }

    public List<string> Positionals { get; } = [];

    /// <summary>Parses <paramref name="args"/>; names in <paramref name="flagNames"/> take no value.</summary>
    public static CommandLine Parse(string[] args, params string[] flagNames) => new(flagNames, args);

    public bool Flag(string name) => _flags.Contains(name);

    public string? Option(string name) => _options.TryGetValue(name, out var values) ? values[^1] : null;

    public IReadOnlyList<string> Options(string name) => _options.TryGetValue(name, out var values) ? values : [];

    public int IntOption(string name, int fallback)
    {
        var value = Option(name);
        if (value is null)
        {
            return fallback;
        }
        return int.TryParse(value, out var parsed) ? parsed : throw new UsageException($"--{name} must be an integer (got '{value}').");
    }

    /// <summary>Fails on options the command does not know, so typos are not silently ignored.</summary>
    public void RejectUnknown(params string[] known)
    {
        foreach (var name in _options.Keys.Concat(_flags))
        {
            if (!known.Contains(name))
            {
                throw new UsageException($"Unknown option --{name}.");
            }
        }
    }

    private void Add(string name, string value)
    {
        if (!_options.TryGetValue(name, out var values))
        {
            _options[name] = values = [];
        }
        values.Add(value);
    }
}

/// <summary>A mistake in how the command was called; printed with the usage, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
