using System.Net;
using System.Net.Sockets;

namespace Kosmos2.Launch;

/// <summary>Free loopback TCP ports for servers started by tests, benchmarks and <c>kosmos2 up</c>.</summary>
public static class FreePort
{
    // Below the kernel's ephemeral range, where no outgoing connection takes its source port. A port the OS picked
    // (listen on 0) comes from that range, and between the check and the service's bind the many client connections of
    // tests running in parallel could take it: a clean-clone CI run saw a gateway fail with "address already in use".
    private const int LowestPort = 15000;

    /// <summary>
    /// A loopback port that was free a moment ago, chosen at random below the ephemeral range (so the only race left is
    /// with another process choosing the same one of ~17,000), or one the OS picks when that range is too small.
    /// </summary>
    public static int Next()
    {
        var ephemeralLow = EphemeralRangeStart();
        if (ephemeralLow - LowestPort >= 1000)
        {
            for (var attempt = 0; attempt < 200; attempt++)
            {
                var port = Random.Shared.Next(LowestPort, ephemeralLow);
                if (IsFree(port))
                {
                    return port;
                }
            }
        }
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var picked = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return picked;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The first port of Linux's <c>ip_local_port_range</c>; of the IANA dynamic range (49152) elsewhere.</summary>
    private static int EphemeralRangeStart()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 49152;
        }
    }
}
