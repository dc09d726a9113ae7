using static TorchSharp.torch;

namespace Reverie.Optimization;

/// <summary>
/// Seeded weight initialization that does not touch torch's global generator, so that a network
/// built on one thread is the same whatever other threads draw meanwhile.
/// </summary>
internal static class Init
{
    /// <summary>
    /// Re-draws a module's parameters from <paramref name="seed"/>, with PyTorch's default bounds
    /// for linear and convolution layers: weights and biases uniform in ±1/√fan_in, where fan_in
    /// is the input features times the kernel size (for transposed convolutions, dimension 1 is
    /// the output channels and fan_in is computed from dimension 1, as PyTorch does). 1-D
    /// parameters whose name ends in "norm...weight" become 1 and their biases 0.
    /// </summary>
    public static void Reset(nn.Module module, int seed)
    {
        var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        double lastBound = 1;
        foreach (var (name, p) in module.named_parameters())
        {
            bool norm = name.Contains("norm", StringComparison.OrdinalIgnoreCase);
            if (p.dim() >= 2)
            {
                long fanIn = p.shape[1] * p.shape.Skip(2).Aggregate(1L, (a, b) => a * b);
                lastBound = 1 / Math.Sqrt(fanIn);
                p.copy_((rand(p.shape, generator: g) * S(2) - S(1)) * S(lastBound));
            }
            else if (norm) p.fill_(S(name.EndsWith("weight") ? 1 : 0));
            else if (name.EndsWith("bias")) p.copy_((rand(p.shape, generator: g) * S(2) - S(1)) * S(lastBound));
            else p.zero_();
        }
    }
}
