using System.Text.Json.Serialization;
using Reverie.Models;
using static TorchSharp.torch;

namespace Reverie.Jobs;

/// <summary>The precision a network computes in.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Precision>))]
public enum Precision
{
    /// <summary>32-bit floating point.</summary>
    Fp32,
    /// <summary>bfloat16 for the network (fast on CPUs with AVX-512 BF16); images, gradients and objectives stay fp32.</summary>
    Bf16,
}

/// <summary>
/// What every job's options record has: the model, the seed, the precision and the device.
/// A job's options record, serialized, is its recipe: it holds every input (files as absolute
/// paths) and no output location.
/// </summary>
public abstract record JobOptions
{
    /// <summary>The model: a registry name, checkpoint, weights or .onnx file; null for the job's default.</summary>
    public string? Model { get; init; }
    /// <summary>The seed of every random choice.</summary>
    public int Seed { get; init; }
    /// <summary>The network's precision.</summary>
    public Precision Precision { get; init; } = Precision.Fp32;
    /// <summary><c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>The input files the job reads (their hashes go into the recipe, and replay checks them).</summary>
    public virtual IEnumerable<string> InputFiles() => Model is { } m && File.Exists(m) ? [m] : [];

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run; called before anything is loaded.</summary>
    public virtual void Validate()
    {
        if (Device is not ("cpu" or "cuda")) throw new BadInputException($"--device must be cpu or cuda; got '{BadInputException.Shown(Device)}'.");
    }

    /// <summary>
    /// The job's peak memory estimated from these options alone (an image's header may be read), or
    /// null where nothing the user sets can make it large; <see cref="MemoryBudget"/> refuses a job
    /// whose estimate is above the budget before it starts.
    /// </summary>
    internal virtual MemoryEstimate? EstimateMemory() => null;

    /// <summary>The torch device, checked.</summary>
    public Device TorchDevice() => Device switch
    {
        "cuda" => cuda.is_available() ? CUDA : throw new BadInputException("--device cuda: CUDA is not available (this build references the CPU TorchSharp package, or there is no GPU)."),
        _ => CPU,
    };

    /// <summary>
    /// Refuses, in one sentence and before anything is loaded, what this build or this job cannot
    /// honour: a device the build cannot reach, or bfloat16 for a job whose network runs in fp32 only.
    /// Every job passes through here (<see cref="Job{TOptions}"/>), whatever surface sent it.
    /// </summary>
    internal Device CheckRuntime(string kind, bool honoursBFloat16)
    {
        var device = TorchDevice();
        if (BFloat16 && !honoursBFloat16)
            throw new BadInputException($"{kind} runs its network in fp32 only; drop --precision bf16 (\"precision\": \"Bf16\" in a recipe).");
        return device;
    }

    /// <summary>Puts a freshly opened network on the device and in the precision asked for.</summary>
    public void Prepare(INetwork network)
    {
        var device = TorchDevice();
        if (device.type != TorchSharp.DeviceType.CPU || Precision == Precision.Bf16)
            network.To(device, Precision == Precision.Bf16 ? ScalarType.BFloat16 : null);
    }

    /// <summary>Whether the network runs in bfloat16.</summary>
    [JsonIgnore]
    public bool BFloat16 => Precision == Precision.Bf16;
}
