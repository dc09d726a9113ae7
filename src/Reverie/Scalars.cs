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
