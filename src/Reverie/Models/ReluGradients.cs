using static TorchSharp.torch;

namespace Reverie.Models;

/// <summary>
/// The ReLU-gradient redirect, for every backend: within <see cref="Redirect"/> (on this thread), every
/// ReLU of an imported graph or a natively built network passes a fraction of the gradient where it is
/// off, while its forward values stay exact. Feature visualization uses it for its first steps, so that
/// a channel that is dead on the gray start image still receives a gradient (the idea of Lucid's
/// redirected ReLU). A network's ReLUs call <see cref="Relu"/>, <see cref="Relu6"/> or hold a
/// <see cref="Module"/>.
/// </summary>
internal static class ReluGradients
{
    [ThreadStatic] static double _leak;

    /// <summary>Within the returned scope (on this thread), ReLUs pass <paramref name="leak"/> of the gradient where they are off.</summary>
    public static IDisposable Redirect(double leak)
    {
        double previous = _leak;
        _leak = leak;
        return new Restore(previous);
    }

    sealed class Restore(double previous) : IDisposable
    {
        public void Dispose() => _leak = previous;
    }

    /// <summary>ReLU; inside <see cref="Redirect"/>, its gradient is 1 where x &gt; 0 and the leak elsewhere.</summary>
    public static Tensor Relu(Tensor x) => Leaked(x, x.relu());

    /// <summary>ReLU6 (min(max(x, 0), 6)); inside <see cref="Redirect"/>, the leak passes where x ≤ 0 (the top stays flat, as in PyTorch).</summary>
    public static Tensor Relu6(Tensor x) => Leaked(x, x.relu6());

    static Tensor Leaked(Tensor x, Tensor y)
    {
        if (_leak <= 0 || !x.requires_grad) return y;
        // Forward: y exactly (the added term is zero); backward: y's gradient plus the leak where x ≤ 0.
        // Every Scalar explicit (an implicit alpha of 1 in a + b is a temporary Scalar).
        var off = x.le(S(0)).to(x.dtype).mul(S(_leak));
        return y.add(x.sub(x.detach()).mul(off), S(1));
    }

    /// <summary>A ReLU (or ReLU6) module that follows the redirect: what natively built networks hold where torchvision has nn.ReLU.</summary>
    public sealed class Module(bool six = false) : nn.Module<Tensor, Tensor>(six ? "ReLU6" : "ReLU")
    {
        /// <inheritdoc/>
        public override Tensor forward(Tensor x) => six ? Relu6(x) : Relu(x);
    }
}
