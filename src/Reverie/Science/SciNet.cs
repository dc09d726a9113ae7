using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Science;

/// <summary>
/// SciNet's shape for the Copernicus experiment (Iten et al. 2020): an encoder maps one
/// observation (cos θS, sin θS, cos θM, sin θM) to a 2-neuron latent state, given as a mean and a
/// log-variance (a β-VAE); the state evolves by a learned constant step, r(t+1) = r(t) + b; a
/// decoder maps each state back to the observation at that time. Both halves have two hidden
/// layers of 100 ELU units.
/// </summary>
internal sealed class SciNet : nn.Module<Tensor, Tensor>
{
    /// <summary>Latent neurons.</summary>
    public const int Latents = 2;
    const int Hidden = 100, Observed = 4;

    readonly Sequential encoder, decoder;
    readonly Parameter step;

    /// <summary>Creates the network with weights drawn from torch's global generator (use <c>Init.Reset</c> for seeded weights).</summary>
    public SciNet() : base(nameof(SciNet))
    {
        encoder = nn.Sequential(nn.Linear(2, Hidden), nn.ELU(), nn.Linear(Hidden, Hidden), nn.ELU(), nn.Linear(Hidden, 2 * Latents));
        decoder = nn.Sequential(nn.Linear(Latents, Hidden), nn.ELU(), nn.Linear(Hidden, Hidden), nn.ELU(), nn.Linear(Hidden, Observed));
        step = new Parameter(zeros(Latents));
        RegisterComponents();
    }

    /// <summary>The learned constant latent step b.</summary>
    public Tensor Step => step;

    /// <summary>The latent distribution of observations [N,4]: mean and log-variance, each [N,2].</summary>
    public (Tensor Mean, Tensor LogVar) Encode(Tensor observation)
    {
        // The encoder reads each angle as a number in (−π, π]. A latent state that moves by a
        // constant step must jump somewhere on each circle, and the angle's own wrap at ±π gives
        // the encoder that jump; read as (cos, sin), the encoder would have to learn a cliff.
        var angles = stack([atan2(observation.select(1, 1), observation.select(1, 0)), atan2(observation.select(1, 3), observation.select(1, 2))], 1);
        var h = encoder.forward(angles);
        return (h.narrow(1, 0, Latents), h.narrow(1, Latents, Latents));
    }

    /// <summary>The observation predicted from latent states [...,2].</summary>
    public Tensor Decode(Tensor latent) => decoder.forward(latent);

    /// <summary>Latent states after <paramref name="steps"/> steps [T] from states r0 [N,2]: [N,T,2].</summary>
    public Tensor Evolve(Tensor r0, Tensor steps) => r0.unsqueeze(1) + steps.to(r0.dtype).reshape(1, -1, 1) * step.reshape(1, 1, Latents);

    /// <summary>The latent representation (the encoder's mean) of observations [N,4]: [N,2].</summary>
    public override Tensor forward(Tensor observation) => Encode(observation).Mean;

    /// <summary>Prediction of <paramref name="length"/> steps from the first observations [N,4]: [N,length,4].</summary>
    public Tensor Predict(Tensor first, int length)
    {
        var (mean, _) = Encode(first);
        return Decode(Evolve(mean, arange(S(length), device: first.device)));
    }
}
