using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Reverie.Tests.Infrastructure;

/// <summary>ONNX Runtime, the oracle for forward outputs.</summary>
public static class Ort
{
    /// <summary>Runs a model file on one float input (converted to float16 when the graph wants it) and returns the named outputs as float arrays.</summary>
    public static Dictionary<string, (float[] Data, int[] Shape)> Run(byte[] model, string inputName, float[] input, int[] shape, params string[] outputs)
    {
        using var opts = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = 2 };
        using var session = new InferenceSession(model, opts);
        var meta = session.InputMetadata[inputName];
        NamedOnnxValue value = meta.ElementType == typeof(Float16)
            ? NamedOnnxValue.CreateFromTensor(inputName, new DenseTensor<Float16>(input.Select(v => (Float16)v).ToArray(), shape))
            : NamedOnnxValue.CreateFromTensor(inputName, new DenseTensor<float>(input, shape));
        var names = outputs.Length > 0 ? outputs : session.OutputMetadata.Keys.ToArray();
        using var results = session.Run(new[] { value }, names);
        var dict = new Dictionary<string, (float[], int[])>();
        foreach (var r in results)
        {
            if (r.Value is DenseTensor<float> f) dict[r.Name] = (f.ToArray(), f.Dimensions.ToArray());
            else if (r.Value is DenseTensor<Float16> h) dict[r.Name] = (h.ToArray().Select(v => (float)v).ToArray(), h.Dimensions.ToArray());
            else throw new InvalidOperationException($"Output {r.Name} has an unexpected type.");
        }
        return dict;
    }
}
