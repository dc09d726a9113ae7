using System.Runtime.CompilerServices;

namespace Reverie.Tests.Infrastructure;

/// <summary>
/// libtorch's threads in this test process: REVERIE_TEST_THREADS when set (scripts/test.sh runs one
/// test process per core and gives each its share, so that two processes do not oversubscribe the
/// cores), else libtorch's own default.
/// </summary>
static class Threads
{
    [ModuleInitializer]
    internal static void Set()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("REVERIE_TEST_THREADS"), out int n) && n >= 1)
            TorchSharp.torch.set_num_threads(n);
    }
}
