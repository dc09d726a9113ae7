using TorchSharp;

namespace Reverie;

/// <summary>
/// Scalars for libtorch calls that stay alive until the call has returned.
/// <para>
/// TorchSharp turns a number passed where a <see cref="Scalar"/> is expected (<c>x * 0.5f</c>,
/// <c>x.clamp(0, 1)</c>) into a temporary Scalar whose native memory only its finalizer frees. The
/// wrapper reads the handle and calls libtorch without keeping the temporary alive, so a garbage
/// collection started by another thread in that window can run the finalizer while libtorch is
/// reading the value: libtorch then sees freed memory and fails with "Expected false to be true"
/// (Scalar::toDouble on a corrupted tag) or, worse, computes with a garbage number or crashes.
/// Measured: 5 such failures in 481,523 <c>x * 2.5f</c> calls with a second thread allocating
/// (ScalarLifetimeTests), and a training run that failed that way 2 times in 4 while its progress
/// reports ran on the thread pool.
/// </para>
/// <para>
/// <see cref="S(double)"/> and its overloads make the Scalar, keep it in a small per-thread ring and
/// dispose of it only when the ring comes round again, many calls later on the same thread, by
/// which time the call that used it has returned. Reverie's code never converts numbers to
/// Scalars implicitly (a test checks the sources); it writes <c>x * S(0.5f)</c>.
/// </para>
/// </summary>
internal static class Scalars
{
    /// <summary>How many recent Scalars each thread keeps; far more than one expression makes.</summary>
    const int Ring = 64;

    [ThreadStatic] static Scalar?[]? _ring;
    [ThreadStatic] static int _next;

    static Scalar Keep(Scalar s)
    {
        var ring = _ring ??= new Scalar?[Ring];
        ring[_next]?.Dispose();
        ring[_next] = s;
        _next = (_next + 1) % Ring;
        return s;
    }

    /// <summary>A double Scalar (libtorch's float64), alive for the call it is passed to.</summary>
    public static Scalar S(double value) => Keep(value.ToScalar());
    /// <summary>A float Scalar (float32), alive for the call it is passed to.</summary>
    public static Scalar S(float value) => Keep(value.ToScalar());
    /// <summary>An integer Scalar (int64), alive for the call it is passed to.</summary>
    public static Scalar S(long value) => Keep(value.ToScalar());
    /// <summary>An integer Scalar (int32), alive for the call it is passed to.</summary>
    public static Scalar S(int value) => Keep(value.ToScalar());
    /// <summary>A boolean Scalar, alive for the call it is passed to.</summary>
    public static Scalar S(bool value) => Keep(value.ToScalar());
}

/// <summary>
/// A stretch of libtorch calls during which no garbage collection starts, for the temporary Scalars
/// that TorchSharp makes inside its own code (the alpha of 1 in <c>a + b</c>, batch norm's
/// <c>num_batches_tracked.add_(1)</c>), which <see cref="Scalars.S(double)"/> cannot reach: with no
/// collection, no finalizer can free one while libtorch reads it. The runtime sets aside
/// <see cref="Budget"/> bytes for every thread's allocations; past that it collects anyway and the
/// stretch ends early (no worse than without it). Used around each training step, the hottest loop
/// of small tensor operations. Nested or concurrent stretches are no-ops.
/// </summary>
internal static class GcPause
{
    /// <summary>
    /// Managed bytes all threads may allocate during a stretch. The budget is a time: another thread
    /// allocating 4 MB a second spends 16 MB in 4 s, and a step slower than that lets a collection
    /// in (FastStyleTests failed so once, on one thread of a loaded machine). 256 MB was tried and
    /// set back while the attack tests' slowness was unexplained; it turned out to be HopSkipJump's
    /// page faults, not the stretches (docs/testing.md), so a larger budget is open to measure again.
    /// </summary>
    const long Budget = 16L * 1024 * 1024;

    /// <summary>Whether stretches are off (<c>REVERIE_GC_PAUSE=0</c>), for measuring what they cost.</summary>
    static readonly bool Off = Environment.GetEnvironmentVariable("REVERIE_GC_PAUSE") == "0";

    /// <summary>Starts a stretch; dispose the result to end it.</summary>
    public static Stretch Begin()
    {
        if (Off || System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) return default;
        // Without a full blocking collection first the runtime may not have the budget at hand, and then no
        // stretch would start at all. Then it may collect now, before the stretch, when no libtorch call is
        // reading. (A precaution: whether a failed start is what let a replayed training skip a step in 4 of
        // 12 runs on 2026-12-07 is not shown; the step's retry in FastStyleTrainer is what stopped it.)
        try { return new Stretch(GC.TryStartNoGCRegion(Budget, disallowFullBlockingGC: true) || GC.TryStartNoGCRegion(Budget, disallowFullBlockingGC: false)); }
        catch (InvalidOperationException) { return default; } // another thread's stretch is running
        catch (ArgumentOutOfRangeException) { return default; }
    }

    /// <summary>A stretch without garbage collections; ends when disposed.</summary>
    public readonly struct Stretch(bool active) : IDisposable
    {
        /// <summary>Ends the stretch, unless the runtime already ended it.</summary>
        public void Dispose()
        {
            if (!active || System.Runtime.GCSettings.LatencyMode != System.Runtime.GCLatencyMode.NoGCRegion) return;
            try { GC.EndNoGCRegion(); }
            catch (InvalidOperationException) { } // the budget ran out and a collection ended it
        }
    }
}
