using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Prompts;

namespace Kosmos2.Cli;

/// <summary>
/// The commands that talk to a gateway (caption, ground, refer, ask, chat, generate --gateway) and the offline
/// generate. Text streams as it arrives; entities are listed after; <c>--json</c> prints one object; <c>--out</c> draws.
/// </summary>
internal static class ClientCommands
{
    private static readonly string[] CommonOptions = ["gateway", "api-key", "json", "out", "max-new-tokens", .. SamplingFlags.Names];

    /// <summary>The options every client command takes, for the help texts.</summary>
    public const string ClientOptionsHelp = """
        Client options: --gateway ADDR (default $KOSMOS2_GATEWAY or http://127.0.0.1:50051), --api-key K
          (or $KOSMOS2_API_KEY), --json (one JSON object), --out FILE.png (draw the boxes), --max-new-tokens N
        Sampling: --temperature T [--seed S], --constrain-grounding (only well-formed boxes), --logprobs
          (token log-probabilities and box confidences), --top-logprobs N (0…5 alternatives per token)
        """;

    /// <summary>Each client command: its usage line and what it does.</summary>
    public static readonly IReadOnlyList<(string Name, string Usage, string Summary)> Help =
    [
        ("caption", "caption IMAGE [--detailed]", "a grounded caption (brief, or detailed with --detailed)"),
        ("ground", "ground IMAGE PHRASE...", "boxes for each phrase"),
        ("refer", "refer IMAGE --box x1,y1,x2,y2 [--box …] [--phrase TEXT]", "describe a region (pixels, or normalised when all ≤ 1)"),
        ("ask", "ask IMAGE QUESTION", "visual question answering"),
        ("chat", "chat IMAGE [--no-grounding]", "a multi-turn session, one question per line; a line may end with --box x1,y1,x2,y2"),
        ("generate", "generate --image FILE --prompt TEXT [--bboxes JSON] [--model-dir DIR [--dtype float32|bfloat16] | --gateway ADDR]",
            "a free prompt, offline (--model-dir) or through a gateway; --bboxes as the reference processor takes them, one " +
            "entry per <phrase>: null, [x1, y1, x2, y2] floats, [ul, lr] patch indices, or a list of boxes"),
    ];

    public static Task<int> CaptionAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "json", "detailed"]);
        cli.RejectUnknown([.. CommonOptions, "detailed"]);
        var request = new GenerateRequest { Task = cli.Flag("detailed") ? TaskKind.DetailedCaption : TaskKind.BriefCaption };
        return RunGatewayAsync(cli, ImageArgument(cli, 1), request);
    }

    public static Task<int> GroundAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "json"]);
        cli.RejectUnknown(CommonOptions);
        var image = ImageArgument(cli, 2);
        var request = new GenerateRequest { Task = TaskKind.PhraseGrounding };
        request.Phrases.Add(cli.Positionals.Skip(1));
        return RunGatewayAsync(cli, image, request);
    }

    public static Task<int> ReferAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "json"]);
        cli.RejectUnknown([.. CommonOptions, "box", "phrase"]);
        var image = ImageArgument(cli, 1);
        if (cli.Options("box").Count == 0)
        {
            throw new UsageException("refer needs --box x1,y1,x2,y2.");
        }
        var request = new GenerateRequest { Task = TaskKind.ReferringExpressionGeneration };
        request.Regions.Add(RegionOf(cli.Options("box"), cli.Option("phrase") ?? ""));
        return RunGatewayAsync(cli, image, request);
    }

    public static Task<int> AskAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "json"]);
        cli.RejectUnknown(CommonOptions);
        var image = ImageArgument(cli, 2);
        var request = new GenerateRequest { Task = TaskKind.Vqa, Text = string.Join(' ', cli.Positionals.Skip(1)) };
        return RunGatewayAsync(cli, image, request);
    }

    /// <summary><c>generate</c>: offline with --model-dir, otherwise through the gateway; same flags, same JSON.</summary>
    public static async Task<int> GenerateAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "json"]);
        cli.RejectUnknown([.. CommonOptions, "model-dir", "image", "prompt", "bboxes", "dtype"]);
        var imagePath = cli.Option("image") ?? throw new UsageException("generate needs --image FILE.");
        var prompt = cli.Option("prompt") ?? throw new UsageException("generate needs --prompt TEXT.");
        var imageBytes = ReadImage(imagePath);
        var boxes = ParseBoxes(cli.Option("bboxes"));
        var maxNewTokens = cli.IntOption("max-new-tokens", 64);

        if (cli.Option("model-dir") is { } modelDir)
        {
            if (cli.Option("gateway") is not null)
            {
                throw new UsageException("Give either --model-dir (offline) or --gateway, not both.");
            }
            if (SamplingFlags.NeedsGateway(cli))
            {
                throw new UsageException("--constrain-grounding and --logprobs need a gateway: the offline generate is the reference's plain greedy loop.");
            }
            var report = OfflineGenerator.Run(modelDir, imageBytes, prompt, boxes, maxNewTokens, cli.Option("dtype") ?? "float32");
            Print(cli, report, imageBytes, streamedText: false);
            return 0;
        }

        var request = new GenerateRequest { Prompt = prompt };
        request.Regions.Add(ToRegions(boxes));
        return await RunGatewayAsync(cli, imageBytes, request);
    }

    /// <summary><c>chat IMAGE</c>: one question per line (standard input or the terminal); <c>--box</c> at the end of a line adds a region.</summary>
    public static async Task<int> ChatAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "json", "no-grounding"]);
        cli.RejectUnknown([.. CommonOptions, "no-grounding"]);
        var imageBytes = ImageArgument(cli, 1);
        using var gateway = new GatewayConnection(cli);
        try
        {
            var session = await gateway.Client.CreateSessionAsync(new CreateSessionRequest
            {
                Image = new Image { Data = ByteString.CopyFrom(imageBytes) },
                Options = new SessionOptions { Grounding = !cli.Flag("no-grounding"), Stopping = Stopping(cli), Sampling = SamplingFlags.From(cli) },
            }, gateway.Headers);
            var interactive = !Console.IsInputRedirected;
            if (interactive)
            {
                Console.Error.WriteLine($"Session {session.Id}: ask about the image; end a line with --box x1,y1,x2,y2 to point at a region; Ctrl-D ends.");
            }
            while (true)
            {
                if (interactive)
                {
                    Console.Error.Write("> ");
                }
                var line = Console.ReadLine();
                if (line is null)
                {
                    break;
                }
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }
                var (question, boxes) = SplitBoxes(line);
                var turn = new SendTurnRequest { SessionId = session.Id, Text = question };
                if (boxes.Count > 0)
                {
                    turn.Regions.Add(RegionOf(boxes, ""));
                }
                var (result, elapsed) = await GatewayConnection.StreamAsync(gateway.Client.SendTurn(turn, gateway.Headers), cli.Flag("json") ? null : Console.Out);
                var report = GatewayConnection.ToReport(result, elapsed);
                if (cli.Flag("json"))
                {
                    Console.WriteLine(report.ToJson());
                }
                else
                {
                    Console.Write(report.EntitiesText());
                }
            }
            return 0;
        }
        catch (RpcException ex)
        {
            Console.Error.WriteLine(GatewayConnection.Describe(ex));
            return 1;
        }
    }

    private static async Task<int> RunGatewayAsync(CommandLine cli, byte[] imageBytes, GenerateRequest request)
    {
        request.Image = new Image { Data = ByteString.CopyFrom(imageBytes) };
        request.Stopping = Stopping(cli);
        request.Sampling = SamplingFlags.From(cli);
        using var gateway = new GatewayConnection(cli);
        try
        {
            var echo = cli.Flag("json") ? null : Console.Out;
            var (result, elapsed) = await GatewayConnection.StreamAsync(gateway.Client.Generate(request, gateway.Headers), echo);
            Print(cli, GatewayConnection.ToReport(result, elapsed), imageBytes, streamedText: true);
            return 0;
        }
        catch (RpcException ex)
        {
            Console.Error.WriteLine(GatewayConnection.Describe(ex));
            return 1;
        }
    }

    private static void Print(CommandLine cli, GenerationReport report, byte[] imageBytes, bool streamedText)
    {
        if (cli.Flag("json"))
        {
            Console.WriteLine(report.ToJson());
        }
        else
        {
            if (!streamedText)
            {
                Console.WriteLine(report.CleanText);
            }
            Console.Write(report.EntitiesText());
        }
        if (cli.Option("out") is { } outPath)
        {
            BoxDrawing.Draw(imageBytes, report.Entities, outPath);
            Console.Error.WriteLine($"kosmos2: drew {report.Entities.Sum(e => e.Boxes.Count)} boxes on {outPath}");
        }
    }

    internal static StoppingParameters Stopping(CommandLine cli) => new() { MaxNewTokens = (uint)cli.IntOption("max-new-tokens", 0) };

    private static byte[] ImageArgument(CommandLine cli, int minimumPositionals)
    {
        if (cli.Positionals.Count < minimumPositionals)
        {
            throw new UsageException("Missing arguments: see `kosmos2 help`.");
        }
        return ReadImage(cli.Positionals[0]);
    }

    private static byte[] ReadImage(string path) =>
        File.Exists(path) ? File.ReadAllBytes(path) : throw new UsageException($"Image file {path} does not exist.");

    private static ReferringBoxes? ParseBoxes(string? json)
    {
        if (json is null)
        {
            return null;
        }
        try
        {
            return ReferringBoxes.Parse(json);
        }
        catch (Exception ex) when (ex is JsonException or InvalidPromptException)
        {
            throw new UsageException($"--bboxes: {ex.Message}");
        }
    }

    /// <summary>
    /// The processor's <c>bboxes</c> as API regions, one per phrase in order: null → a region with no box, a 4-float box →
    /// normalised coordinates, an <c>[ul, lr]</c> pair → a patch box.
    /// </summary>
    internal static IEnumerable<Region> ToRegions(ReferringBoxes? boxes) =>
        (boxes?.Phrases ?? []).Select(phrase =>
        {
            var region = new Region { Frame = BoxFrame.Normalized };
            region.Boxes.Add((phrase ?? []).Select(box => box switch
            {
                CoordinateReferringBox c => new Box { X1 = c.Box.X1, Y1 = c.Box.Y1, X2 = c.Box.X2, Y2 = c.Box.Y2 },
                PatchIndexReferringBox p => new Box { Patch = new PatchIndexBox { TopLeft = (uint)p.Ul, BottomRight = (uint)p.Lr } },
                _ => throw new UsageException($"--bboxes: unsupported box {box}."),
            }));
            return region;
        });

    /// <summary>A region from <c>x1,y1,x2,y2</c> strings: normalised when every value is ≤ 1, else pixels.</summary>
    internal static Region RegionOf(IEnumerable<string> boxes, string phrase)
    {
        var region = new Region { Phrase = phrase };
        var parsed = boxes.Select(ParseBox).ToList();
        region.Frame = parsed.All(b => b.All(v => v <= 1)) ? BoxFrame.Normalized : BoxFrame.Pixels;
        region.Boxes.Add(parsed.Select(b => new Box { X1 = b[0], Y1 = b[1], X2 = b[2], Y2 = b[3] }));
        return region;
    }

    private static double[] ParseBox(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != 4 || !parts.All(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
        {
            throw new UsageException($"A box is x1,y1,x2,y2 (got '{text}').");
        }
        return parts.Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>"What is this? --box 1,2,3,4" → ("What is this?", ["1,2,3,4"]).</summary>
    private static (string Question, List<string> Boxes) SplitBoxes(string line)
    {
        var boxes = new List<string>();
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        for (var i = words.Count - 2; i >= 0; i--)
        {
            if (words[i] == "--box")
            {
                boxes.Insert(0, words[i + 1]);
                words.RemoveRange(i, 2);
            }
        }
        return (string.Join(' ', words), boxes);
    }
}
