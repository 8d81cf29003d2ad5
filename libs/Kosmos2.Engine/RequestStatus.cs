namespace Kosmos2.Engine;

/// <summary>Where a request is in its life.</summary>
internal enum RequestStatus
{
    /// <summary>Accepted, not yet admitted: holds no slot.</summary>
    Waiting,

    /// <summary>Holds a slot: prefilling or decoding.</summary>
    Running,

    /// <summary>Ended and reported; holds nothing.</summary>
    Finished,
}
