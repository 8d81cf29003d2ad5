using System.Globalization;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli;

/// <summary>
/// The client commands' sampling options: <c>--temperature T [--seed S]</c>, <c>--constrain-grounding</c> (well-formed
/// boxes only), <c>--logprobs</c> (each token's log-probability and each box's confidence in <c>--json</c>) and
/// <c>--top-logprobs N</c> (0…5 alternatives per token; implies <c>--logprobs</c>).
/// </summary>
internal static class SamplingFlags
{
    /// <summary>Options that take no value.</summary>
    public static readonly string[] Switches = ["logprobs", "constrain-grounding"];

    /// <summary>Every name this class reads, for <see cref="CommandLine.RejectUnknown"/>.</summary>
    public static readonly string[] Names = ["temperature", "seed", "top-logprobs", .. Switches];

    /// <summary>Whether a decoder-side option was given (the offline generate has none).</summary>
    public static bool NeedsGateway(CommandLine cli) => Switches.Any(cli.Flag) || cli.Option("top-logprobs") is not null;

    /// <summary>The request's sampling, or null when no option asks for anything but the defaults.</summary>
    public static SamplingParameters? From(CommandLine cli)
    {
        var top = cli.IntOption("top-logprobs", 0);
        if (top is < 0 or > 5)
        {
            throw new UsageException($"--top-logprobs must be 0…5 (got {top}).");
        }
        var sampling = new SamplingParameters
        {
            ConstrainGrounding = cli.Flag("constrain-grounding"),
            ReturnLogprobs = cli.Flag("logprobs") || top > 0,
            TopLogprobs = (uint)top,
        };
        if (cli.Option("temperature") is { } temperature)
        {
            sampling.Temperature = float.Parse(temperature, CultureInfo.InvariantCulture);
            if (cli.Option("seed") is { } seed)
            {
                sampling.Seed = ulong.Parse(seed, CultureInfo.InvariantCulture);
            }
        }
        return sampling.Equals(new SamplingParameters()) ? null : sampling;
    }
}
