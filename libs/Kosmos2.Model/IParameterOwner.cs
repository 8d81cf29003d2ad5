using TorchSharp.Modules;

namespace Kosmos2.Model;

/// <summary>
/// A module with raw <see cref="Parameter"/> fields (not inside a Linear/LayerNorm/...): lets the checkpoint loader
/// replace a meta-device placeholder by the loaded tensor without a name-mapping table.
/// </summary>
internal interface IParameterOwner
{
    /// <summary>Replaces the parameter registered as <paramref name="name"/> (the checkpoint's last key segment).</summary>
    void SetParameter(string name, Parameter value);
}
