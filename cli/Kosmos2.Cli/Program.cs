using Kosmos2.Cli;
using Kosmos2.Cli.Batch;
using Kosmos2.Cli.Eval;

// `kosmos2`: a local cluster, offline generation and client commands in one command.
(string Name, string Usage, string Summary, Func<string[], Task<int>> Run)[] commands =
[
    ("up", UpCommand.Usage, "start Redis, the vision worker, the decoder worker and the gateway on loopback", UpCommand.RunAsync),
    .. ClientCommands.Help.Select(c => (c.Name, c.Usage, c.Summary, Handler(c.Name))),
    ("batch", BatchCommand.Usage, BatchCommand.Summary, BatchCommand.RunAsync),
    ("eval", EvalCommand.Usage, EvalCommand.Summary, EvalCommand.RunAsync),
];

static Func<string[], Task<int>> Handler(string name) => name switch
{
    "generate" => ClientCommands.GenerateAsync,
    "caption" => ClientCommands.CaptionAsync,
    "ground" => ClientCommands.GroundAsync,
    "refer" => ClientCommands.ReferAsync,
    "ask" => ClientCommands.AskAsync,
    "chat" => ClientCommands.ChatAsync,
    _ => throw new InvalidOperationException($"No handler for {name}."),
};

try
{
    if (args.Length == 0)
    {
        return Usage(Console.Error, 2);
    }
    if (args[0] is "help" or "--help" or "-h")
    {
        return args.Length > 1 ? CommandUsage(args[1]) : Usage(Console.Out, 0);
    }
    var command = commands.FirstOrDefault(c => c.Name == args[0]);
    if (command.Run is null)
    {
        throw new UsageException($"Unknown command '{args[0]}'.");
    }
    // `--help` anywhere after the command: that command's usage, whatever else was given.
    return args.Skip(1).Any(a => a is "--help" or "-h") ? CommandUsage(command.Name) : await command.Run(args[1..]);
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"kosmos2: {ex.Message}");
    Console.Error.WriteLine("Run `kosmos2 help` for usage.");
    return 2;
}

int Usage(TextWriter writer, int code)
{
    writer.WriteLine("kosmos2 — serve and use Kosmos-2, the grounding multimodal model");
    writer.WriteLine();
    writer.WriteLine("Commands:");
    foreach (var c in commands)
    {
        writer.WriteLine($"  {c.Usage}");
        writer.WriteLine($"      {c.Summary}");
    }
    writer.WriteLine("  help [COMMAND]");
    writer.WriteLine("      this text, or one command's (also `kosmos2 COMMAND --help`)");
    writer.WriteLine();
    writer.WriteLine(ClientCommands.ClientOptionsHelp);
    return code;
}

int CommandUsage(string name)
{
    var command = commands.FirstOrDefault(c => c.Name == name);
    if (command.Run is null)
    {
        throw new UsageException($"Unknown command '{name}'.");
    }
    Console.WriteLine($"usage: kosmos2 {command.Usage}");
    Console.WriteLine();
    Console.WriteLine($"  {command.Summary}");
    var details = command.Name switch { "batch" => BatchCommand.Details, "eval" => EvalCommand.Details, _ => null };
    if (details is not null)
    {
        Console.WriteLine();
        Console.WriteLine(details);
    }
    if (command.Name != "up")
    {
        Console.WriteLine();
        Console.WriteLine(ClientCommands.ClientOptionsHelp);
    }
    return 0;
}
