using System.Text.RegularExpressions;

namespace Reverie.Models.Onnx;

/// <summary>
/// Derives readable layer names for graphs whose tensors are anonymous (r0, r1 ... in the ONNX
/// zoo's Caffe exports), from the names of the weights each node reads:
/// <list type="bullet">
/// <item>a node that reads a weight <c>X_w_0</c>, <c>X_b_0</c>, <c>X.weight</c> ... (as a second or later input) is named <c>X</c>;
/// when a convolution or dense layer feeds a single ReLU, the ReLU's output takes <c>X</c> (Caffe's
/// in-place ReLU, which is what DeepDream's blobs hold) and the linear output becomes <c>X/pre_relu</c>;</item>
/// <item>a Concat whose inputs all belong to one module <c>P/...</c> is <c>P/output</c> (the inception module outputs);</item>
/// <item>a weightless node feeding a single weighted node of another module <c>P</c> is <c>P/op</c> (inception_3a/maxpool);</item>
/// <item>any other node whose first input has a name is <c>that/op</c> (conv2/3x3/lrn).</item>
/// </list>
/// For BVLC GoogLeNet this yields the Caffe names the original DeepDream uses (conv1/7x7_s2,
/// conv2/3x3, inception_4c/3x3, inception_4c/output ...), and Lucid's aliases (mixed4c, conv2d0 ...).
/// </summary>
internal static partial class LayerNaming
{
    static readonly string[] WeightSuffixes = ["_w_0", "_b_0", "_W_0", "_B_0", ".weight", ".bias", "_weight", "_bias", "_w", "_b", "_W", "_B", "_scale_0", "_mean_0", "_var_0", "_scale", "_mean", "_var"];

    static string? WeightBase(string initializer)
    {
        foreach (var s in WeightSuffixes)
            if (initializer.EndsWith(s, StringComparison.Ordinal) && initializer.Length > s.Length)
                return initializer[..^s.Length];
        return null;
    }

    static string Module(string name)
    {
        int slash = name.IndexOf('/');
        return slash < 0 ? name : name[..slash];
    }

    /// <summary>Returns derived names and Lucid-style aliases, each mapped to a tensor name.</summary>
    public static (Dictionary<string, string> Derived, Dictionary<string, string> Aliases) Derive(IReadOnlyList<OnnxNode> nodes, HashSet<string> initializers)
    {
        var taken = new HashSet<string>(nodes.SelectMany(n => n.Outputs).Concat(nodes.Select(n => n.Name)), StringComparer.Ordinal);
        var consumers = new Dictionary<string, List<OnnxNode>>();
        foreach (var n in nodes)
            foreach (var i in n.Inputs)
                if (i.Length > 0) (consumers.TryGetValue(i, out var l) ? l : consumers[i] = new()).Add(n);

        // Pass 1: base names of weighted nodes.
        var weightBase = new Dictionary<OnnxNode, string>();
        foreach (var n in nodes)
        {
            var b = n.Inputs.Skip(1).Where(initializers.Contains).Select(WeightBase).FirstOrDefault(x => x is not null);
            if (b is not null) weightBase[n] = b;
        }

        var tensorName = new Dictionary<string, string>(); // tensor -> derived
        var used = new HashSet<string>(StringComparer.Ordinal);
        void Assign(string tensor, string name)
        {
            if (tensorName.ContainsKey(tensor) || taken.Contains(name)) return;
            string unique = name;
            for (int k = 1; !used.Add(unique); k++) unique = $"{name}_{k}";
            tensorName[tensor] = unique;
        }

        foreach (var n in nodes)
        {
            if (n.Outputs.Count == 0 || n.Outputs[0].Length == 0) continue;
            string output = n.Outputs[0];
            if (weightBase.TryGetValue(n, out var b))
            {
                var next = consumers.GetValueOrDefault(output);
                if (next is { Count: 1 } && next[0].OpType == "Relu" && next[0].Outputs.Count > 0)
                {
                    Assign(output, b + "/pre_relu");
                    Assign(next[0].Outputs[0], b);
                }
                else Assign(output, b);
                continue;
            }
            if (tensorName.ContainsKey(output)) continue;
            string op = n.OpType.ToLowerInvariant();
            var inputNames = n.Inputs.Where(i => i.Length > 0 && !initializers.Contains(i)).Select(i => tensorName.GetValueOrDefault(i)).ToList();
            if (n.OpType == "Concat" && inputNames.Count > 1 && inputNames.All(x => x is not null))
            {
                var modules = inputNames.Select(x => Module(x!)).Distinct().ToList();
                if (modules.Count == 1 && inputNames.All(x => x!.Contains('/'))) { Assign(output, modules[0] + "/output"); continue; }
            }
            var outConsumers = consumers.GetValueOrDefault(output);
            string? first = inputNames.FirstOrDefault();
            if (outConsumers is { Count: 1 } && weightBase.TryGetValue(outConsumers[0], out var cb) && cb.Contains('/')
                && (first is null || Module(first) != Module(cb)))
            {
                Assign(output, Module(cb) + "/" + op);
                continue;
            }
            if (first is not null) Assign(output, first + "/" + op);
        }

        // PyTorch (1.13+) names nodes by module scope: /inception4c/branch1/conv/Conv. The last node of
        // each scope is that module's output, addressed by its module path (inception4c, inception4c.branch1).
        var scopeOutput = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            if (!n.Name.StartsWith('/') || n.Outputs.Count == 0 || n.Outputs[0].Length == 0) continue;
            // A child of a Sequential is scoped "/layer3/layer3.1/...": "layer3.1" already carries its parent.
            var parts = new List<string>();
            var segments = n.Name.Trim('/').Split('/');
            for (int k = 0; k < segments.Length - 1; k++)
            {
                if (parts.Count > 0 && segments[k].StartsWith(parts[^1] + ".", StringComparison.Ordinal)) parts[^1] = segments[k];
                else parts.Add(segments[k]);
                scopeOutput[string.Join('.', parts)] = n.Outputs[0];
            }
        }
        var derived = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, tensor) in scopeOutput)
            if (!taken.Contains(path) && used.Add(path)) derived[path] = tensor;
        foreach (var (tensor, name) in tensorName) derived[name] = tensor;
        var aliases = new Dictionary<string, string>();
        foreach (var (name, tensor) in derived)
        {
            var m = InceptionOutput().Match(name);
            if (m.Success) aliases.TryAdd("mixed" + m.Groups[1].Value, tensor);
        }
        // Lucid's InceptionV1 names for the stem convolutions.
        foreach (var (caffe, lucid) in new[] { ("conv1/7x7_s2", "conv2d0"), ("conv2/3x3_reduce", "conv2d1"), ("conv2/3x3", "conv2d2") })
            if (derived.TryGetValue(caffe, out var t)) aliases.TryAdd(lucid, t);
        ResidualAliases(nodes, consumers, initializers, aliases);
        foreach (var a in aliases.Keys.Where(k => derived.ContainsKey(k) || taken.Contains(k)).ToList()) aliases.Remove(a);
        return (derived, aliases);
    }

    /// <summary>
    /// torchvision's ResNet names for a residual network exported with anonymous names (CNTK's
    /// <c>Plus299</c>, <c>ReLU353</c>): each block ends in an Add of two computed tensors feeding one
    /// ReLU; a block whose Add reads the previous block's output continues its stage (<c>layer2.1</c>),
    /// one that does not (a projection shortcut) starts the next (<c>layer3.0</c>); <c>layer3.0/pre_relu</c> is the
    /// block's sum before its ReLU. Also <c>conv1</c>
    /// (the first convolution) and <c>avgpool</c> (the pooling after the last block).
    /// </summary>
    static void ResidualAliases(IReadOnlyList<OnnxNode> nodes, Dictionary<string, List<OnnxNode>> consumers, HashSet<string> initializers, Dictionary<string, string> aliases)
    {
        var ends = new List<(OnnxNode Add, string Output)>();
        foreach (var n in nodes)
        {
            if (n.OpType != "Add" || n.Inputs.Count != 2 || n.Inputs.Any(initializers.Contains)) continue;
            if (consumers.TryGetValue(n.Outputs[0], out var c) && c is [{ OpType: "Relu" } relu]) ends.Add((n, relu.Outputs[0]));
        }
        if (ends.Count < 4) return;
        int stage = 1, index = 0;
        for (int k = 0; k < ends.Count; k++)
        {
            if (k > 0)
            {
                if (ends[k].Add.Inputs.Contains(ends[k - 1].Output)) index++;
                else { stage++; index = 0; }
            }
            aliases.TryAdd($"layer{stage}.{index}", ends[k].Output);
            aliases.TryAdd($"layer{stage}.{index}/pre_relu", ends[k].Add.Outputs[0]); // the sum before the block's ReLU
        }
        if (nodes.FirstOrDefault(n => n.OpType == "Conv") is { } first) aliases.TryAdd("conv1", first.Outputs[0]);
        var last = ends[^1].Output;
        if (consumers.TryGetValue(last, out var after) && after is [{ OpType: "GlobalAveragePool" or "AveragePool" } pool]) aliases.TryAdd("avgpool", pool.Outputs[0]);
    }

    [GeneratedRegex(@"^inception_(\d[a-z])/output$")]
    private static partial Regex InceptionOutput();
}
