using Kosmos2.Cli;

// `kosmos2`: a local cluster, offline generation and client commands in one command.
string help = string.Join('\n',
    "kosmos2 — serve and use Kosmos-2, the grounding multimodal model",
    "",
    "Commands:",
    "  up     start Redis, the vision worker, the decoder worker and the gateway on loopback",
    "         " + UpCommand.Usage,
    ClientCommands.Usage,
    "  help   show this text");

try
{
    return args.Length == 0 ? Usage() : args[0] switch
    {
        "up" => await UpCommand.RunAsync(args[1..]),
        "generate" => await ClientCommands.GenerateAsync(args[1..]),
        "caption" => await ClientCommands.CaptionAsync(args[1..]),
        "ground" => await ClientCommands.GroundAsync(args[1..]),
        "refer" => await ClientCommands.ReferAsync(args[1..]),
        "ask" => await ClientCommands.AskAsync(args[1..]),
        "chat" => await ClientCommands.ChatAsync(args[1..]),
        "help" or "--help" or "-h" => Usage(0),
        _ => throw new UsageException($"Unknown command '{args[0]}'."),
    };
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"kosmos2: {ex.Message}");
    Console.Error.WriteLine("Run `kosmos2 help` for usage.");
    return 2;
}

int Usage(int code = 2)
{
    (code == 0 ? Console.Out : Console.Error).WriteLine(help);
    return code;
}
