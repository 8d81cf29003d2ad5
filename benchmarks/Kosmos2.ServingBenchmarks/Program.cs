using System.Globalization;
using Kosmos2.ServingBenchmarks;

// Serving benchmarks over real processes (see README.md): `vision`, `decoder`, `gateway`, `stall`, `faults`, `batch`, `chat`. Progress lines while running;
// the last lines are `name: value unit`, one per figure.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: Kosmos2.ServingBenchmarks vision|decoder|gateway|stall|faults|batch|chat [--name value …]  (see benchmarks/Kosmos2.ServingBenchmarks/README.md)");
    return args.Length == 0 ? 2 : 0;
}
var options = BenchOptions.Parse(args.Skip(1));
var figures = new Figures();
Progress.Log($"{args[0]}: {Environment.ProcessorCount} cores, load average {LoadAverage.Now()}");
try
{
    switch (args[0])
    {
        case "vision":
            await VisionBench.RunAsync(options, figures);
            break;
        case "decoder":
            await DecoderBench.RunAsync(options, figures);
            break;
        case "gateway":
            await GatewayBench.RunAsync(options, figures);
            break;
        case "stall":
            await StallBench.RunAsync(options, figures);
            break;
        case "batch":
            await BatchBench.RunAsync(options, figures);
            break;
        case "faults":
            await FaultsBench.RunAsync(options, figures);
            break;
        case "chat":
            await ChatBench.RunAsync(options, figures);
            break;
        default:
            Console.Error.WriteLine($"unknown benchmark '{args[0]}': vision, decoder, gateway, stall, faults, batch or chat");
            return 2;
    }
}
finally
{
    figures.Add("load_average_end", LoadAverage.OneMinute(), "(1 min)");
}
figures.Print();
return 0;
