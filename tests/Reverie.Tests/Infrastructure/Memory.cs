using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Xunit.Sdk;

[assembly: Reverie.Tests.Infrastructure.BoundMemory]

namespace Reverie.Tests.Infrastructure;

/// <summary>
/// Keeps a test process's resident memory bounded between tests, and records it. A TorchSharp tensor a
/// test does not dispose holds native memory that only its finalizer frees, and the garbage collector,
/// which sees a small managed object, may not run for many tests; glibc keeps freed blocks in its arenas.
/// Two test processes that each grow to many GB press a 24 GB machine into reclaiming pages, and every
/// test slows down (docs/testing.md). So after each test, when the process holds more than
/// <see cref="Threshold"/> resident (REVERIE_TEST_RSS_MB, 3,072 MB by default), it collects, runs the
/// finalizers, collects again and gives glibc's free pages back (<c>malloc_trim</c>). No libtorch call is
/// in flight then: the tests run one at a time (Serial.cs).
/// Each test's line (seconds, resident memory after it and after the release, the process's peak so far)
/// goes to TestResults/memory-PID.tsv when REVERIE_TEST_MEMORY_LOG names a folder (scripts/test.sh does).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method)]
sealed class BoundMemoryAttribute : BeforeAfterTestAttribute
{
    static readonly long Threshold =
        (long.TryParse(Environment.GetEnvironmentVariable("REVERIE_TEST_RSS_MB"), out long mb) && mb > 0 ? mb : 3072) << 20;
    static readonly string? LogPath = Environment.GetEnvironmentVariable("REVERIE_TEST_MEMORY_LOG") is { Length: > 0 } dir
        ? Path.Combine(dir, $"memory-{Environment.ProcessId}.tsv") : null;
    static readonly object Gate = new();
    readonly Stopwatch clock = new();

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    public override void Before(MethodInfo methodUnderTest) => clock.Restart();

    public override void After(MethodInfo methodUnderTest)
    {
        double seconds = clock.Elapsed.TotalSeconds;
        long after = ProcStatus.Bytes("self", "VmRSS"), released = after;
        if (after > Threshold)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            MallocTrim(0);
            released = ProcStatus.Bytes("self", "VmRSS");
        }
        if (LogPath is null) return;
        lock (Gate)
            File.AppendAllText(LogPath, $"{methodUnderTest.DeclaringType?.FullName}.{methodUnderTest.Name}\t{seconds:0.0}\t{after >> 20}\t{released >> 20}\t{ProcStatus.Bytes("self", "VmHWM") >> 20}\n");
    }
}
