using System.Globalization;

namespace Reverie.Jobs;

/// <summary>
/// A job's peak memory, estimated from its options before any work: the terms that grow with the
/// user's numbers (images held at full size, a network's activations and their gradients for a
/// batch of pixels), each named, so that a refusal can say what costs.
/// </summary>
/// <param name="Bytes">The estimated peak, in bytes.</param>
/// <param name="What">What it counts, for the refusal's sentence (e.g. "256 images of 2048x2048 through googlenet").</param>
internal sealed record MemoryEstimate(long Bytes, string What)
{
    /// <summary>A network's activations, kept for the backward pass, and their gradients, per input pixel (float32).</summary>
    /// <remarks>
    /// Measured as a process's peak resident memory above the same run at 32x32 (`visualize`, 3 steps,
    /// 2026-12-07): BVLC GoogLeNet 3.4-5.1 kB a pixel (1x384², 4x384², 8x256², 1x1024²), the embedded
    /// textures network 0.8 kB (4x384²). The constants are above those: 4 kB for the ImageNet networks
    /// Reverie knows by name (with <see cref="NetworkOverhead"/>), 1 kB for its small embedded ones, and
    /// 8 kB, twice GoogLeNet's, for any other network: an unknown one may be a VGG, whose full-resolution
    /// layers are wider (not measured here; no VGG is among the test models).
    /// MemoryBudgetTests checks the GoogLeNet figure against a real run.
    /// </remarks>
    internal static long ActivationBytesPerPixel(string? model)
    {
        string m = Path.GetFileNameWithoutExtension(model ?? "googlenet").ToLowerInvariant();
        string[] small = ["textures", "mnist", "fashion", "mlp"];
        string[] imagenet = ["googlenet", "inception", "deepdream", "squeezenet", "resnet", "alexnet", "mobilenet", "densenet", "shufflenet", "efficientnet"];
        if (small.Any(n => m.Contains(n, StringComparison.Ordinal))) return 1024;
        if (imagenet.Any(n => m.Contains(n, StringComparison.Ordinal))) return 4096;
        return 8192;
    }

    /// <summary>What a network's first real pass adds beyond its activations (libtorch's and oneDNN's workspaces), measured at about 200 MB for GoogLeNet.</summary>
    internal const long NetworkOverhead = 256L << 20;

    /// <summary>A float32 RGB image of <paramref name="pixels"/> held <paramref name="copies"/> times.</summary>
    internal static long Images(long pixels, int copies) => Sat(pixels, 12L * copies);

    /// <summary>A network's forward and backward pass over <paramref name="batch"/> inputs of <paramref name="pixels"/> each.</summary>
    internal static long Network(string? model, long batch, long pixels) => Sum(NetworkOverhead, Sat(Sat(batch, pixels), ActivationBytesPerPixel(model)));

    /// <summary>
    /// Images optimized through a network (visualize, atlas, style): <paramref name="batch"/> images of
    /// <paramref name="size"/>² pixels, each held about 8 times (the parameters, their gradient, the
    /// optimizer's moments, the transformed copy), and the network's activations over all of them.
    /// </summary>
    internal static MemoryEstimate Optimized(string model, long batch, long size, string? what = null)
    {
        long pixels = Sat(batch, Sat(size, size));
        return new(Sum(Images(pixels, 8), Network(model, batch, size * size)),
            $"{what ?? (batch == 1 ? "one image" : $"{batch} images")} of {size}x{size} through {Shown(model)}");
    }

    /// <summary>A model's name as a sentence shows it: a file by its name only.</summary>
    internal static string Shown(string model) => BadInputException.Shown(model.Contains('/') ? Path.GetFileName(model) : model);

    /// <summary>The sum of estimates, saturating instead of overflowing.</summary>
    internal static long Sum(params long[] parts)
    {
        long s = 0;
        foreach (var p in parts) s = s > long.MaxValue - p ? long.MaxValue : s + p;
        return s;
    }

    static long Sat(long a, long b) => a != 0 && b > long.MaxValue / a ? long.MaxValue : a * b;
}

/// <summary>
/// The memory a job may use: refuses, before any work, a job whose <see cref="MemoryEstimate"/> exceeds it.
/// Default: three quarters of the memory the process may use (the machine's, or its container's limit);
/// <c>REVERIE_MAX_MEMORY</c> or the CLI's <c>--max-memory</c> (e.g. <c>8G</c>, <c>512M</c>) change it.
/// </summary>
internal static class MemoryBudget
{
    /// <summary>The budget the CLI's --max-memory set for this process, or null.</summary>
    internal static long? Override { get; set; }

    /// <summary>The budget in bytes.</summary>
    internal static long Bytes => Override
        ?? (Environment.GetEnvironmentVariable("REVERIE_MAX_MEMORY") is { Length: > 0 } env ? Parse(env, "REVERIE_MAX_MEMORY") : Default);

    /// <summary>Three quarters of the memory available to the process.</summary>
    internal static long Default => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;

    /// <summary>Parses a size: a whole or decimal number with an optional K, M, G or T (powers of 1024); plain numbers are bytes.</summary>
    internal static long Parse(string text, string what = "--max-memory")
    {
        string t = text.Trim();
        long unit = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is 'B') t = t[..^1];
        if (t.Length > 0)
        {
            switch (char.ToUpperInvariant(t[^1]))
            {
                case 'K': unit = 1L << 10; t = t[..^1]; break;
                case 'M': unit = 1L << 20; t = t[..^1]; break;
                case 'G': unit = 1L << 30; t = t[..^1]; break;
                case 'T': unit = 1L << 40; t = t[..^1]; break;
            }
        }
        if (!double.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v * unit < 64L << 20 || v * unit > (double)(1L << 50))
            throw new BadInputException($"{what} takes a size from 64M to 1024T, such as 8G or 512M; got '{BadInputException.Shown(text)}'.");
        return (long)(v * unit);
    }

    /// <summary>A size for people: 1.5 GB, 640 MB.</summary>
    internal static string Show(long bytes) => bytes >= 1L << 40
        ? (bytes / (double)(1L << 40)).ToString("0.#", CultureInfo.InvariantCulture) + " TB"
        : bytes >= 1L << 30
        ? (bytes / (double)(1L << 30)).ToString(bytes >= 100L << 30 ? "0" : "0.#", CultureInfo.InvariantCulture) + " GB"
        : (bytes / (double)(1L << 20)).ToString("0", CultureInfo.InvariantCulture) + " MB";

    /// <summary>Refuses an estimate above the budget, in one sentence with both numbers and what to change.</summary>
    internal static void Check(MemoryEstimate? estimate, string kind)
    {
        if (estimate is null) return;
        long budget = Bytes;
        if (estimate.Bytes <= budget) return;
        string need = estimate.Bytes == long.MaxValue ? "more memory than any machine has" : $"about {Show(estimate.Bytes)} of memory";
        throw new BadInputException($"This {kind} would need {need} ({estimate.What}), more than its budget of {Show(budget)}; "
            + "make the sizes or batches smaller, or raise the budget with --max-memory (or REVERIE_MAX_MEMORY) if the machine has it.");
    }
}
