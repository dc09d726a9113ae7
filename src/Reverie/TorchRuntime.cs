using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Reverie;

/// <summary>Process-wide settings applied before libtorch loads.</summary>
internal static class TorchRuntime
{
    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// libtorch logs a warning for every convolution on CPUs that NNPACK does not support
    /// ("Could not initialize NNPACK! Reason: Unsupported hardware"), which would flood the CLI's
    /// stderr. c10 reads TORCH_CPP_LOG_LEVEL when it loads; .NET's Environment does not reach the
    /// native environment on Unix, so it is set through libc. A value the user set is kept.
    /// </summary>
#pragma warning disable CA2255 // must run before any Reverie code can load libtorch
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        if (!OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("TORCH_CPP_LOG_LEVEL") is null)
        {
            try { SetEnv("TORCH_CPP_LOG_LEVEL", "ERROR", 0); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        }
    }
}
