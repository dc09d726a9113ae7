using System.Runtime.InteropServices;
using TorchSharp;

namespace Reverie;

/// <summary>Process-wide libtorch settings.</summary>
internal static class TorchRuntime
{
    static int _done;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate IntPtr GlobalContext();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate void SetFlag(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    /// <summary>
    /// Loads libtorch and turns off NNPACK. On CPUs that NNPACK does not support, libtorch 2.10
    /// checks for it on every convolution and prints "Could not initialize NNPACK! Reason:
    /// Unsupported hardware" each time, which would flood the CLI's stderr; NNPACK is never used
    /// on such CPUs anyway. TorchSharp does not expose the switch (torch.backends.nnpack in
    /// Python), so at::globalContext().setUserEnabledNNPACK(false) is called through its exported
    /// symbols. Safe to call many times; does nothing if the symbols are missing.
    /// </summary>
    public static void Initialize()
    {
        if (Interlocked.Exchange(ref _done, 1) == 1) return;
        torch.InitializeDeviceType(DeviceType.CPU);
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", out var lib)) return;
        if (NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var ctxFn) &&
            NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setFn))
        {
            var ctx = Marshal.GetDelegateForFunctionPointer<GlobalContext>(ctxFn)();
            Marshal.GetDelegateForFunctionPointer<SetFlag>(setFn)(ctx, false);
        }
        QuietNativeWarnings();
    }

    /// <summary>
    /// Keeps libtorch's C++ warnings off the console (e.g. "Optimizer::parameters() will be removed
    /// in PyTorch 1.6", printed by the native L-BFGS that TorchSharp wraps): raises c10's log level
    /// (FLAGS_caffe2_log_level) to ERROR, unless the user set TORCH_CPP_LOG_LEVEL. Called by
    /// <see cref="Initialize"/>.
    /// </summary>
    static void QuietNativeWarnings()
    {
        if (Environment.GetEnvironmentVariable("TORCH_CPP_LOG_LEVEL") is { Length: > 0 }) return;
        if (NativeLibrary.TryLoad("libc10.so", out var c10) && NativeLibrary.TryGetExport(c10, "FLAGS_caffe2_log_level", out var level))
            Marshal.WriteInt32(level, 2); // c10: 0 INFO, 1 WARNING, 2 ERROR
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    delegate bool SetFlushDenormal(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    /// <summary>
    /// Flushes denormal floats to zero on the calling thread (torch.set_flush_denormal in Python),
    /// through libtorch's at::Context::setFlushDenormal. Small networks trained to convergence
    /// otherwise slow down several times as Adam's moments and the gradients turn denormal.
    /// Returns false when the symbol is missing or the CPU has no such mode.
    /// </summary>
    public static bool FlushDenormals()
    {
        Initialize();
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", out var lib)) return false;
        if (!NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var ctxFn) ||
            !NativeLibrary.TryGetExport(lib, "_ZN2at7Context16setFlushDenormalEb", out var setFn)) return false;
        var ctx = Marshal.GetDelegateForFunctionPointer<GlobalContext>(ctxFn)();
        // The context pointer goes first, as for a member function; were the function static, the
        // non-null pointer would read as "true" too.
        return Marshal.GetDelegateForFunctionPointer<SetFlushDenormal>(setFn)(ctx, true);
    }
}
