using Reverie.Models.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Reverie.Models.Onnx;

/// <summary>A compiled ONNX node: maps its inputs (null where an optional input is omitted) to its outputs.</summary>
internal delegate Tensor[] OpKernel(Tensor?[] inputs);

/// <summary>A node's attributes, read once when the graph is built.</summary>
internal sealed class Attributes
{
    readonly Dictionary<string, AttributeProto> _byName;
    public string NodeName { get; }

    public Attributes(NodeProto node, string nodeName)
    {
        NodeName = nodeName;
        _byName = node.Attribute.GroupBy(a => a.Name).ToDictionary(g => g.Key, g => g.Last());
    }

    public bool Has(string name) => _byName.ContainsKey(name);
    public long Int(string name, long fallback) => _byName.TryGetValue(name, out var a) ? a.I : fallback;
    public float Float(string name, float fallback) => _byName.TryGetValue(name, out var a) ? a.F : fallback;
    public string String(string name, string fallback) => _byName.TryGetValue(name, out var a) ? a.S.ToStringUtf8() : fallback;
    public long[]? Ints(string name) => _byName.TryGetValue(name, out var a) ? a.Ints.ToArray() : null;
    public float[]? Floats(string name) => _byName.TryGetValue(name, out var a) ? a.Floats.ToArray() : null;
    public TensorProto? TensorAttr(string name) => _byName.TryGetValue(name, out var a) ? a.T : null;
    public IEnumerable<string> Names => _byName.Keys;
}

/// <summary>
/// The ONNX operators Reverie runs, each as a differentiable TorchSharp computation. Kernels are
/// built once per node (attributes parsed, opset-specific behaviour chosen) and run many times.
/// </summary>
internal static class OnnxOps
{
    delegate OpKernel Factory(Attributes a, int opset, int inputCount, int outputCount);

    static readonly Dictionary<string, Factory> Factories = new()
    {
        ["Conv"] = Conv,
        ["ConvTranspose"] = ConvTranspose,
        ["Relu"] = (a, o, i, n) => x => [ReluGradients.Relu(x[0]!)],
        ["LeakyRelu"] = (a, o, i, n) => { double alpha = a.Float("alpha", 0.01f); return x => [F.leaky_relu(x[0]!, alpha)]; },
        ["Sigmoid"] = (a, o, i, n) => x => [x[0]!.sigmoid()],
        ["Tanh"] = (a, o, i, n) => x => [x[0]!.tanh()],
        ["Clip"] = Clip,
        ["MaxPool"] = MaxPool,
        ["AveragePool"] = AveragePool,
        ["GlobalAveragePool"] = (a, o, i, n) => x => [x[0]!.mean(SpatialDims(x[0]!), keepdim: true)],
        ["GlobalMaxPool"] = (a, o, i, n) => x => [x[0]!.amax(SpatialDims(x[0]!), keepdim: true)],
        ["LRN"] = Lrn,
        ["BatchNormalization"] = BatchNorm,
        ["InstanceNormalization"] = InstanceNorm,
        ["Concat"] = (a, o, i, n) => { long axis = a.Int("axis", 1); return x => [cat(x.Select(t => t!).ToArray(), Axis(axis, x[0]!.dim()))]; },
        ["Add"] = (a, o, i, n) => Binary(a, o, (p, q) => p + q),
        ["Sub"] = (a, o, i, n) => Binary(a, o, (p, q) => p - q),
        ["Mul"] = (a, o, i, n) => Binary(a, o, (p, q) => p * q),
        ["Div"] = (a, o, i, n) => Binary(a, o, (p, q) => IsInteger(p) && IsInteger(q) ? p.div(q, RoundingMode.trunc) : p / q),
        ["Sum"] = (a, o, i, n) => x => [x.Skip(1).Aggregate(x[0]!.alias(), (s, t) => s + t!)],
        ["MatMul"] = (a, o, i, n) => x => [matmul(x[0]!, x[1]!)],
        ["Gemm"] = Gemm,
        ["Flatten"] = Flatten,
        ["Reshape"] = Reshape,
        ["Transpose"] = Transpose,
        ["Squeeze"] = Squeeze,
        ["Unsqueeze"] = Unsqueeze,
        ["Pad"] = Pad,
        ["Slice"] = Slice,
        ["Gather"] = Gather,
        ["Shape"] = Shape,
        ["Identity"] = (a, o, i, n) => x => [x[0]!.alias()],
        ["Constant"] = Constant,
        ["ConstantOfShape"] = ConstantOfShape,
        ["Dropout"] = Dropout,
        ["Softmax"] = Softmax,
        ["Cast"] = Cast,
        ["Resize"] = (a, o, i, n) => Resize(a, o, i, upsample: false),
        ["Upsample"] = (a, o, i, n) => Resize(a, o, i, upsample: true),
    };

    /// <summary>The operator types Reverie can run.</summary>
    public static IReadOnlyCollection<string> Supported => Factories.Keys;

    public static bool IsSupported(NodeProto node) =>
        (node.Domain is "" or "ai.onnx") && Factories.ContainsKey(node.OpType);

    public static OpKernel Create(NodeProto node, string nodeName, int opset)
    {
        var attrs = new Attributes(node, nodeName);
        return Factories[node.OpType](attrs, opset, node.Input.Count, node.Output.Count);
    }

    // ---------- helpers ----------

    static long[] SpatialDims(Tensor x) => Enumerable.Range(2, (int)x.dim() - 2).Select(d => (long)d).ToArray();

    static long Axis(long axis, long rank) => axis < 0 ? axis + rank : axis;

    static bool IsInteger(Tensor t) => t.dtype is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte;

    /// <summary>Reads a small integer tensor (a shape, axes, pads) as longs.</summary>
    internal static long[] Longs(Tensor t)
    {
        // TorchSharp's to() and cpu() return the same object when nothing changes: never dispose the input.
        var c = t.to(ScalarType.Int64).cpu().contiguous();
        try { return c.data<long>().ToArray(); }
        finally { if (!ReferenceEquals(c, t)) c.Dispose(); }
    }

    static double Scalar(Tensor t)
    {
        var c = t.to(ScalarType.Float64).cpu();
        try { return c.flatten()[0].item<double>(); }
        finally { if (!ReferenceEquals(c, t)) c.Dispose(); }
    }

    static Exception Unsupported(Attributes a, string what) =>
        new BadInputException($"Node '{a.NodeName}': {what} is not supported.");

    /// <summary>Resolves ONNX pads (begins then ends) for auto_pad = SAME_UPPER, SAME_LOWER or VALID.</summary>
    static long[] ResolvePads(string autoPad, long[]? pads, long[] inSize, long[] kernel, long[] strides, long[] dilations)
    {
        int r = inSize.Length;
        var result = pads ?? new long[2 * r];
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            result = new long[2 * r];
            for (int d = 0; d < r; d++)
            {
                long outSize = (inSize[d] + strides[d] - 1) / strides[d];
                long total = Math.Max(0, (outSize - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - inSize[d]);
                long small = total / 2, large = total - small;
                result[d] = autoPad == "SAME_UPPER" ? small : large;
                result[d + r] = autoPad == "SAME_UPPER" ? large : small;
            }
        }
        else if (autoPad == "VALID") result = new long[2 * r];
        return result;
    }

    /// <summary>ONNX pads (begins, ends over the spatial dims) as torch's F.pad list (last dim first).</summary>
    static long[] TorchPads(long[] pads)
    {
        int r = pads.Length / 2;
        var p = new long[2 * r];
        for (int d = 0; d < r; d++)
        {
            p[2 * (r - 1 - d)] = pads[d];
            p[2 * (r - 1 - d) + 1] = pads[d + r];
        }
        return p;
    }

    static bool AllZero(long[] v) => v.All(x => x == 0);

    /// <summary>Lifts a 1-D spatial op to 2-D (a trailing dimension of size 1).</summary>
    static Tensor As2D(Tensor x, int r) => r == 1 ? x.unsqueeze(-1) : x;
    static long[] Lift(long[] v, int r, long fill) => r == 1 ? [v[0], fill] : v;
    static Tensor Unlift(Tensor y, int r) => r == 1 ? y.squeeze(-1) : y;

    // ---------- operators ----------

    static OpKernel Conv(Attributes a, int opset, int nin, int nout)
    {
        string autoPad = a.String("auto_pad", "NOTSET");
        long group = a.Int("group", 1);
        return x =>
        {
            var input = x[0]!; var w = x[1]!; var b = nin > 2 ? x[2] : null;
            int r = (int)input.dim() - 2;
            long[] kernel = w.shape.Skip(2).ToArray();
            long[] strides = a.Ints("strides") ?? Enumerable.Repeat(1L, r).ToArray();
            long[] dil = a.Ints("dilations") ?? Enumerable.Repeat(1L, r).ToArray();
            long[] pads = ResolvePads(autoPad, a.Ints("pads"), input.shape.Skip(2).ToArray(), kernel, strides, dil);
            long[] padding = pads.Take(r).ToArray();
            if (!pads.Take(r).SequenceEqual(pads.Skip(r)))
            {
                input = F.pad(input, TorchPads(pads));
                padding = new long[r];
            }
            if (r == 2 && group == 1 && kernel.All(k => k == 1) && strides.All(v => v == 1) && padding.All(v => v == 0) && IsChannelsLast(input))
                return [PointwiseChannelsLast(input, w, b)];
            (input, w) = WorkAroundWideKernelBug(input, w, group);
            Tensor y = r switch
            {
                1 => F.conv2d(input.unsqueeze(-1), w.unsqueeze(-1), b, Lift(strides, 1, 1), Lift(padding, 1, 0), Lift(dil, 1, 1), group).squeeze(-1),
                2 => F.conv2d(input, w, b, strides, padding, dil, group),
                3 => F.conv3d(input, w, b, strides, padding, dil, group),
                _ => throw Unsupported(a, $"Conv over {r} spatial dimensions"),
            };
            return [y];
        };
    }

    /// <summary>
    /// libtorch 2.10's CPU convolution returns garbage (uninitialized memory, often inf or NaN) on
    /// AVX-512 machines when the input channel count is 4 or 8 more than a multiple of 16 (seen for
    /// 20, 24 and 40 channels; GoogLeNet's inception_4b/5x5 has 24): for 5x5 and larger kernels in
    /// float32, and from 3x3 in bfloat16. Zero channels
    /// appended to the input and to the weights leave the result and its gradient mathematically
    /// unchanged and avoid the faulty kernel. ConvWorkaroundTests guards this.
    /// </summary>
    internal static (Tensor Input, Tensor Weight) WorkAroundWideKernelBug(Tensor input, Tensor w, long group)
    {
        long cin = w.shape[1];
        bool wide = w.shape.Skip(2).Any(k => k >= 3);
        if (group != 1 || !wide || cin <= 16 || cin % 16 == 0 || !input.is_floating_point()) return (input, w);
        long extra = 16 - cin % 16;
        var channelPad = new long[2 * (input.dim() - 2) + 2];
        channelPad[^1] = extra;
        return (F.pad(input, channelPad), F.pad(w, channelPad));
    }

    /// <summary>Whether a 4-D tensor is laid out channels-last (NHWC memory behind NCHW indices).</summary>
    internal static bool IsChannelsLast(Tensor x) => x.dim() == 4 && x.shape[1] > 1 && x.stride(1) == 1 && x.stride(3) == x.shape[1];

    /// <summary>
    /// A 1×1 convolution on a channels-last input, as one matrix product over the pixels (NHWC is
    /// already [pixels, channels] in memory). libtorch 2.10's own channels-last 1×1 kernel returns
    /// wrong values for many channel counts on AVX-512 (e.g. 512→112 at any size, 64→320 at
    /// 28×28; ChannelsLastTests checks the replacement), so it is never called. The result is channels-last too.
    /// </summary>
    internal static Tensor PointwiseChannelsLast(Tensor input, Tensor w, Tensor? b)
    {
        long n = input.shape[0], cin = input.shape[1], h = input.shape[2], wd = input.shape[3], cout = w.shape[0];
        var pixels = input.permute(0, 2, 3, 1).reshape(n * h * wd, cin);
        var y = b is null ? pixels.matmul(w.reshape(cout, cin).t()) : torch.addmm(b, pixels, w.reshape(cout, cin).t(), 1f, 1f);
        return y.view(n, h, wd, cout).permute(0, 3, 1, 2);
    }

    static OpKernel ConvTranspose(Attributes a, int opset, int nin, int nout)
    {
        string autoPad = a.String("auto_pad", "NOTSET");
        long group = a.Int("group", 1);
        return x =>
        {
            var input = x[0]!; var w = x[1]!; var b = nin > 2 ? x[2] : null;
            int r = (int)input.dim() - 2;
            long[] inSize = input.shape.Skip(2).ToArray();
            long[] kernel = w.shape.Skip(2).ToArray();
            long[] strides = a.Ints("strides") ?? Enumerable.Repeat(1L, r).ToArray();
            long[] dil = a.Ints("dilations") ?? Enumerable.Repeat(1L, r).ToArray();
            long[] outPad = a.Ints("output_padding") ?? new long[r];
            long[] pads = a.Ints("pads") ?? new long[2 * r];
            long[]? outShape = a.Ints("output_shape");
            if (outShape is not null && outShape.Length > r) outShape = outShape.Skip(outShape.Length - r).ToArray();
            if (outShape is null && autoPad is "SAME_UPPER" or "SAME_LOWER")
                outShape = inSize.Select((s, d) => s * strides[d]).ToArray();
            if (outShape is not null)
            {
                pads = new long[2 * r];
                for (int d = 0; d < r; d++)
                {
                    long total = strides[d] * (inSize[d] - 1) + outPad[d] + (kernel[d] - 1) * dil[d] + 1 - outShape[d];
                    long half = total / 2;
                    // A requested output larger than the full result grows at the end, like output_padding.
                    if (total < 0) { pads[d] = 0; pads[d + r] = total; }
                    else if (autoPad == "SAME_UPPER") { pads[d] = half; pads[d + r] = total - half; }
                    else { pads[d] = total - half; pads[d + r] = half; }
                }
            }
            // The full transposed convolution, then a crop (or zero extension) to the requested
            // output; the bias is added last so that output_padding cells carry it too.
            var zeros = new long[r];
            Tensor full = r switch
            {
                1 => F.conv_transpose2d(input.unsqueeze(-1), w.unsqueeze(-1), null, Lift(strides, 1, 1), [0, 0], [0, 0], Lift(dil, 1, 1), group).squeeze(-1),
                2 => F.conv_transpose2d(input, w, null, strides, zeros, zeros, dil, group),
                3 => F.conv_transpose3d(input, w, null, strides, zeros, zeros, dil, group),
                _ => throw Unsupported(a, $"ConvTranspose over {r} spatial dimensions"),
            };
            var crop = new long[2 * r];
            for (int d = 0; d < r; d++)
            {
                long fullSize = full.shape[2 + d];
                long want = strides[d] * (inSize[d] - 1) + outPad[d] + (kernel[d] - 1) * dil[d] + 1 - pads[d] - pads[d + r];
                crop[d] = -pads[d];
                crop[d + r] = want - (fullSize - pads[d]);
            }
            var y = AllZero(crop) ? full : F.pad(full, TorchPads(crop));
            if (b is not null) y = y + b.reshape([1, -1, .. Enumerable.Repeat(1L, r)]);
            return [y];
        };
    }

    static OpKernel Clip(Attributes a, int opset, int nin, int nout)
    {
        if (opset < 11)
        {
            float lo = a.Float("min", float.MinValue), hi = a.Float("max", float.MaxValue);
            return x => [x[0]!.clamp(S(lo), S(hi))];
        }
        return x =>
        {
            var v = x[0]!;
            var lo = nin > 1 ? x[1] : null;
            var hi = nin > 2 ? x[2] : null;
            if (lo is null && hi is null) return [v.alias()];
            return [v.clamp(lo is null ? null : (Scalar?)ToScalar(lo, v), hi is null ? null : (Scalar?)ToScalar(hi, v))];
        };
    }

    static TorchSharp.Scalar ToScalar(Tensor t, Tensor like) =>
        IsInteger(like) ? S((long)Scalar(t)) : S(Scalar(t));

    static OpKernel MaxPool(Attributes a, int opset, int nin, int nout)
    {
        string autoPad = a.String("auto_pad", "NOTSET");
        bool ceil = a.Int("ceil_mode", 0) != 0;
        bool columnMajor = a.Int("storage_order", 0) != 0;
        long[] kernel = a.Ints("kernel_shape") ?? throw Unsupported(a, "MaxPool without kernel_shape");
        int r = kernel.Length;
        long[] strides = a.Ints("strides") ?? Enumerable.Repeat(1L, r).ToArray();
        long[] dil = a.Ints("dilations") ?? Enumerable.Repeat(1L, r).ToArray();
        return x =>
        {
            var input = x[0]!;
            long[] inSize = input.shape.Skip(2).ToArray();
            long[] pads = ResolvePads(autoPad, a.Ints("pads"), inSize, kernel, strides, dil);
            // torch pads natively when the pads are symmetric and at most half the kernel (and, in
            // ceil mode, the stride is 1 so that both rules give the same size); otherwise the input
            // is padded explicitly with the lowest value, since ONNX allows any pads.
            bool native = nout == 1 && r is 2 or 3 && pads.Take(r).SequenceEqual(pads.Skip(r))
                && pads.Take(r).Select((p, d) => p <= kernel[d] / 2).All(ok => ok) && (!ceil || strides.All(st => st == 1));
            if (native && !AllZero(pads))
            {
                long[] half = pads.Take(r).ToArray();
                return [r == 2 ? F.max_pool2d(input, kernel, strides, half, dil, ceil) : F.max_pool3d(input, kernel, strides, half, dil, ceil)];
            }
            var padded = AllZero(pads) ? input : F.pad(input, TorchPads(pads), value: LowestValue(input.dtype));
            if (nout > 1)
            {
                if (r != 2) throw Unsupported(a, "MaxPool indices outside 2-D");
                var (y, idx) = F.max_pool2d_with_indices(padded, kernel, strides, [0, 0], dil, ceil);
                // torch indexes each padded plane; ONNX indexes the unpadded tensor flattened over N,C,H,W.
                long wp = padded.shape[3], h = input.shape[2], w = input.shape[3];
                var row = idx.div(S(wp), RoundingMode.floor) - S(pads[0]);
                var col = idx.remainder(S(wp)) - S(pads[1]);
                long planes = input.shape[0] * input.shape[1];
                var plane = arange(S(planes), dtype: ScalarType.Int64, device: input.device).reshape(input.shape[0], input.shape[1], 1, 1);
                return [y, columnMajor ? (plane * S(w) + col) * S(h) + row : (plane * S(h) + row) * S(w) + col];
            }
            Tensor result = r switch
            {
                1 => F.max_pool2d(padded.unsqueeze(-1), Lift(kernel, 1, 1), Lift(strides, 1, 1), [0, 0], Lift(dil, 1, 1), ceil).squeeze(-1),
                2 => F.max_pool2d(padded, kernel, strides, [0, 0], dil, ceil),
                3 => F.max_pool3d(padded, kernel, strides, new long[3], dil, ceil),
                _ => throw Unsupported(a, $"MaxPool over {r} spatial dimensions"),
            };
            return [result];
        };
    }

    static double LowestValue(ScalarType t) => t switch
    {
        ScalarType.Byte or ScalarType.Bool => 0,
        ScalarType.Int8 => sbyte.MinValue,
        ScalarType.Int16 => short.MinValue,
        ScalarType.Int32 => int.MinValue,
        ScalarType.Int64 => long.MinValue,
        _ => double.NegativeInfinity,
    };

    static OpKernel AveragePool(Attributes a, int opset, int nin, int nout)
    {
        string autoPad = a.String("auto_pad", "NOTSET");
        bool ceil = a.Int("ceil_mode", 0) != 0;
        bool includePad = a.Int("count_include_pad", 0) != 0;
        long[] kernel = a.Ints("kernel_shape") ?? throw Unsupported(a, "AveragePool without kernel_shape");
        int r = kernel.Length;
        long[] strides = a.Ints("strides") ?? Enumerable.Repeat(1L, r).ToArray();
        if (a.Ints("dilations") is { } d && d.Any(v => v != 1)) throw Unsupported(a, "AveragePool with dilations");
        Tensor Pool(Tensor t) => r switch
        {
            1 => F.avg_pool2d(t.unsqueeze(-1), Lift(kernel, 1, 1), Lift(strides, 1, 1), [0, 0], ceil, true).squeeze(-1),
            2 => F.avg_pool2d(t, kernel, strides, [0, 0], ceil, true),
            3 => F.avg_pool3d(t, kernel, strides, new long[3], ceil, true),
            _ => throw Unsupported(a, $"AveragePool over {r} spatial dimensions"),
        };
        return x =>
        {
            var input = x[0]!;
            long[] inSize = input.shape.Skip(2).ToArray();
            long[] pads = ResolvePads(autoPad, a.Ints("pads"), inSize, kernel, strides, Enumerable.Repeat(1L, r).ToArray());
            if (AllZero(pads)) return [Pool(input)];
            var tp = TorchPads(pads);
            var padded = F.pad(input, tp);
            if (includePad) return [Pool(padded)];
            // Exclude padding from the count: average of the zero-padded input over the average of a padded mask.
            using var ones = ones_like(input.select(1, 0).unsqueeze(1));
            using var mask = F.pad(ones, tp);
            using var counts = Pool(mask);
            return [Pool(padded) / counts];
        };
    }

    static OpKernel Lrn(Attributes a, int opset, int nin, int nout)
    {
        long size = a.Int("size", 0);
        if (size <= 0) throw Unsupported(a, "LRN without a positive size");
        double alpha = a.Float("alpha", 1e-4f), beta = a.Float("beta", 0.75f), bias = a.Float("bias", 1f);
        long front = (size - 1) / 2, back = size - 1 - front;
        return x =>
        {
            var v = x[0]!;
            long n = v.shape[0], c = v.shape[1];
            if (IsChannelsLast(v))
            {
                // NHWC memory: a pixel's channels are adjacent, so the [N·H·W, C] matrix of squares
                // times a band of ones (channel j counts toward channel i when i - front <= j <= i + back),
                // scaled by alpha/size, plus the bias, is the whole window sum in one matrix product
                // (as is its gradient); the result stays channels-last for the convolutions that follow.
                var t = v.permute(0, 2, 3, 1);
                using var band = ones(c, c, dtype: v.dtype, device: v.device).triu(-back).tril_(front).mul_(S(alpha / size));
                using var offset = full(1, S(bias), dtype: v.dtype, device: v.device);
                var scale = addmm(offset, t.square().reshape(-1, c), band, 1f, 1f).view(t.shape);
                // beta = 0.75 (every Caffe network): x^-0.75 as rsqrt(x)·rsqrt(sqrt(x)), far cheaper than pow.
                var factor = beta == 0.75 ? scale.rsqrt() * scale.sqrt().rsqrt() : scale.pow(S(-beta));
                return [(t * factor).permute(0, 3, 1, 2)];
            }
            var sq = v.pow(S(2)).reshape(n, 1, c, -1);
            var padded = F.pad(sq, [0, 0, front, back]);
            var mean = F.avg_pool2d(padded, [size, 1], [1, 1], [0, 0], false, true).reshape(v.shape);
            return [v / (mean * S(alpha) + S(bias)).pow(S(beta))];
        };
    }

    static long[] ChannelShape(Tensor x) => [1, -1, .. Enumerable.Repeat(1L, (int)x.dim() - 2)];

    static OpKernel BatchNorm(Attributes a, int opset, int nin, int nout)
    {
        if (a.Int("training_mode", 0) != 0) throw Unsupported(a, "BatchNormalization in training mode");
        if (opset < 9 && a.Int("is_test", 1) == 0 && opset < 7) throw Unsupported(a, "BatchNormalization in training mode");
        double eps = a.Float("epsilon", 1e-5f);
        return x =>
        {
            var v = x[0]!;
            var shape = ChannelShape(v);
            var inv = (x[4]! + S(eps)).rsqrt() * x[1]!;
            var shift = x[2]! - x[3]! * inv;
            var outputs = new Tensor[nout];
            outputs[0] = v * inv.reshape(shape) + shift.reshape(shape);
            // Inference mode: optional running statistics outputs pass the inputs through.
            for (int i = 1; i < nout; i++) outputs[i] = x[i % 2 == 1 ? 3 : 4]!.alias();
            return outputs;
        };
    }

    static OpKernel InstanceNorm(Attributes a, int opset, int nin, int nout)
    {
        double eps = a.Float("epsilon", 1e-5f);
        return x =>
        {
            var v = x[0]!;
            if (v.dim() == 4 && v.dtype is ScalarType.Float32 or ScalarType.Float64)
                return [F.instance_norm(v, weight: x[1]!, bias: x[2]!, eps: eps)];
            var dims = SpatialDims(v);
            var mean = v.mean(dims, keepdim: true);
            var centered = v - mean;
            var variance = centered.pow(S(2)).mean(dims, keepdim: true);
            var shape = ChannelShape(v);
            return [centered * (variance + S(eps)).rsqrt() * x[1]!.reshape(shape) + x[2]!.reshape(shape)];
        };
    }

    static OpKernel Binary(Attributes a, int opset, Func<Tensor, Tensor, Tensor> op)
    {
        // Before opset 7, broadcasting was explicit: B aligns with A starting at 'axis'.
        bool legacy = opset < 7 && a.Int("broadcast", 0) != 0;
        long axis = a.Int("axis", -1);
        return x =>
        {
            var p = x[0]!; var q = x[1]!;
            if (legacy && axis >= 0 && q.dim() < p.dim())
            {
                var shape = Enumerable.Repeat(1L, (int)p.dim()).ToArray();
                for (int i = 0; i < q.dim(); i++) shape[axis + i] = q.shape[i];
                q = q.reshape(shape);
            }
            return [op(p, q)];
        };
    }

    static OpKernel Gemm(Attributes a, int opset, int nin, int nout)
    {
        bool ta = a.Int("transA", 0) != 0, tb = a.Int("transB", 0) != 0;
        double alpha = a.Float("alpha", 1f), beta = a.Float("beta", 1f);
        return x =>
        {
            var p = ta ? x[0]!.t() : x[0]!;
            var q = tb ? x[1]!.t() : x[1]!;
            var y = matmul(p, q);
            if (alpha != 1) y = y * S(alpha);
            var c = nin > 2 ? x[2] : null;
            if (c is not null && beta != 0) y = y + (beta == 1 ? c : c * S(beta));
            return [y];
        };
    }

    static OpKernel Flatten(Attributes a, int opset, int nin, int nout)
    {
        long axis = a.Int("axis", 1);
        return x =>
        {
            var v = x[0]!;
            long ax = Axis(axis, v.dim());
            long outer = 1;
            for (int i = 0; i < ax; i++) outer *= v.shape[i];
            long inner = 1;
            for (long i = ax; i < v.dim(); i++) inner *= v.shape[i];
            return [v.reshape(outer, inner)];
        };
    }

    static OpKernel Reshape(Attributes a, int opset, int nin, int nout)
    {
        bool allowZero = a.Int("allowzero", 0) != 0;
        long[]? attrShape = opset < 5 ? a.Ints("shape") : null;
        return x =>
        {
            var v = x[0]!;
            long[] shape = attrShape ?? Longs(x[1]!);
            shape = (long[])shape.Clone();
            if (!allowZero)
                for (int i = 0; i < shape.Length; i++)
                    if (shape[i] == 0) shape[i] = v.shape[i];
            // Exports that fix the batch at one (Caffe's GoogLeNet flattens to [1, 1024]): a batch of
            // N images whose per-image size fits the rest of the shape keeps its batch.
            if (shape.Length > 0 && shape[0] == 1 && v.dim() > 0 && v.shape[0] > 1 && shape.Skip(1).All(d => d > 0)
                && shape.Skip(1).Aggregate(1L, (p, d) => p * d) * v.shape[0] == v.numel())
                shape[0] = v.shape[0];
            return [v.reshape(shape)];
        };
    }

    static OpKernel Transpose(Attributes a, int opset, int nin, int nout)
    {
        long[]? perm = a.Ints("perm");
        return x =>
        {
            var v = x[0]!;
            var p = perm ?? Enumerable.Range(0, (int)v.dim()).Reverse().Select(i => (long)i).ToArray();
            return [v.permute(p)];
        };
    }

    static long[]? AxesFrom(Attributes a, int opset, int fromOpset, Tensor?[] x, int index) =>
        opset >= fromOpset ? (x.Length > index && x[index] is { } t ? Longs(t) : null) : a.Ints("axes");

    static OpKernel Squeeze(Attributes a, int opset, int nin, int nout) => x =>
    {
        var v = x[0]!;
        var axes = AxesFrom(a, opset, 13, x, 1);
        if (axes is null)
        {
            var keep = v.shape.Where(s => s != 1).ToArray();
            return [v.reshape(keep)];
        }
        var drop = axes.Select(ax => Axis(ax, v.dim())).ToHashSet();
        foreach (var d in drop)
            if (v.shape[d] != 1) throw new BadInputException($"Node '{a.NodeName}': Squeeze of axis {d} whose size is {v.shape[d]}, not 1.");
        return [v.reshape(v.shape.Where((s, i) => !drop.Contains(i)).ToArray())];
    };

    static OpKernel Unsqueeze(Attributes a, int opset, int nin, int nout) => x =>
    {
        var v = x[0]!;
        var axes = AxesFrom(a, opset, 13, x, 1) ?? throw Unsupported(a, "Unsqueeze without axes");
        long outRank = v.dim() + axes.Length;
        var insert = axes.Select(ax => Axis(ax, outRank)).ToHashSet();
        var shape = new List<long>();
        int src = 0;
        for (int i = 0; i < outRank; i++) shape.Add(insert.Contains(i) ? 1 : v.shape[src++]);
        return [v.reshape(shape.ToArray())];
    };

    static OpKernel Pad(Attributes a, int opset, int nin, int nout)
    {
        string mode = a.String("mode", "constant");
        return x =>
        {
            var v = x[0]!;
            int r = (int)v.dim();
            long[] pads;
            double value = 0;
            long[]? axes = null;
            if (opset < 11)
            {
                pads = a.Ints(opset < 2 ? "paddings" : "pads") ?? throw Unsupported(a, "Pad without pads");
                value = a.Float("value", 0f);
            }
            else
            {
                pads = Longs(x[1]!);
                if (nin > 2 && x[2] is { } cv && cv.numel() > 0) value = Scalar(cv);
                if (nin > 3 && x[3] is { } ax) axes = Longs(ax).Select(q => Axis(q, r)).ToArray();
            }
            var full = new long[2 * r];
            var dims = axes ?? Enumerable.Range(0, r).Select(i => (long)i).ToArray();
            for (int i = 0; i < dims.Length; i++)
            {
                full[dims[i]] = pads[i];
                full[dims[i] + r] = pads[i + dims.Length];
            }
            if (mode == "constant") return [F.pad(v, TorchPads(full), value: value)];
            // libtorch's own reflect/replicate padding is much faster; it covers the common case of
            // a 4-D tensor padded on its two spatial dimensions by less than their size.
            if (r == 4 && mode is "reflect" or "edge" && full[0] == 0 && full[1] == 0 && full[4] == 0 && full[5] == 0
                && full.All(q => q >= 0) && full[2] < v.shape[2] && full[6] < v.shape[2] && full[3] < v.shape[3] && full[7] < v.shape[3])
                return [F.pad(v, [full[3], full[7], full[2], full[6]], mode == "reflect" ? TorchSharp.PaddingModes.Reflect : TorchSharp.PaddingModes.Replicate)];
            return [IndexPad(v, full, mode, a)];
        };
    }

    /// <summary>Reflect, edge and wrap padding on any dimension, by gathering indices (differentiable, no rank limits).</summary>
    static Tensor IndexPad(Tensor v, long[] pads, string mode, Attributes a)
    {
        int r = (int)v.dim();
        var y = v;
        for (int d = 0; d < r; d++)
        {
            long b = pads[d], e = pads[d + r], n = y.shape[d];
            if (b < 0) { y = y.narrow(d, -b, n + b); n += b; b = 0; }
            if (e < 0) { y = y.narrow(d, 0, n + e); n += e; e = 0; }
            if (b == 0 && e == 0) continue;
            var idx = new long[n + b + e];
            for (long i = -b; i < n + e; i++)
            {
                long j = i;
                switch (mode)
                {
                    case "edge": j = Math.Clamp(i, 0, n - 1); break;
                    case "wrap": j = ((i % n) + n) % n; break;
                    case "reflect":
                        if (n == 1) { j = 0; break; }
                        long period = 2 * (n - 1);
                        j = ((i % period) + period) % period;
                        if (j >= n) j = period - j;
                        break;
                    default: throw Unsupported(a, $"Pad mode '{mode}'");
                }
                idx[i + b] = j;
            }
            using var index = tensor(idx, device: y.device);
            y = y.index_select(d, index);
        }
        return ReferenceEquals(y, v) ? v.alias() : y;
    }

    /// <summary>
    /// Resize (opset 10+) and Upsample: nearest and linear (any rank, axis by axis) with every
    /// coordinate transformation except tf_crop_and_resize; cubic is refused. Built from index
    /// selections and linear blends, so it is differentiable.
    /// </summary>
    static OpKernel Resize(Attributes a, int opset, int nin, bool upsample)
    {
        string op = upsample ? "Upsample" : "Resize";
        string mode = a.String("mode", "nearest");
        if (mode is not ("nearest" or "linear" or "bilinear")) throw Unsupported(a, $"{op} mode '{mode}'");
        string coord = !upsample && opset >= 11 ? a.String("coordinate_transformation_mode", "half_pixel") : "asymmetric";
        if (coord == "tf_crop_and_resize") throw Unsupported(a, "Resize with tf_crop_and_resize");
        string rounding = !upsample && opset >= 11 ? a.String("nearest_mode", "round_prefer_floor") : "floor";
        return x =>
        {
            var v = x[0]!;
            int r = (int)v.dim();
            double[]? scales = null;
            long[]? sizes = null;
            if (upsample) scales = opset < 9 ? a.Floats("scales")?.Select(f => (double)f).ToArray() : Doubles(x[1]!);
            else if (opset < 11) scales = Doubles(x[1]!);
            else
            {
                if (nin > 2 && x[2] is { } sc && sc.numel() > 0) scales = Doubles(sc);
                if (nin > 3 && x[3] is { } sz && sz.numel() > 0) sizes = Longs(sz);
            }
            if (sizes is null && scales is null) throw Unsupported(a, $"{op} without scales or sizes");
            var y = v;
            for (int d = 0; d < r; d++)
            {
                long n = v.shape[d];
                long m = sizes?[d] ?? (long)Math.Floor(n * scales![d] + 1e-9);
                double scale = sizes is not null ? (double)m / n : scales![d];
                if (m == n && scale == 1) continue;
                var src = new double[m];
                for (long i = 0; i < m; i++)
                    src[i] = coord switch
                    {
                        "half_pixel" => (i + 0.5) / scale - 0.5,
                        "pytorch_half_pixel" => m > 1 ? (i + 0.5) / scale - 0.5 : 0,
                        // With scales, the spec divides by the unrounded output length n·scale − 1.
                        "align_corners" => (sizes is null ? n * scale : m) is var len && len > 1 ? i * (n - 1) / (len - 1) : 0,
                        "tf_half_pixel_for_nn" => (i + 0.5) / scale,
                        _ => i / scale, // asymmetric
                    };
                if (mode == "nearest")
                {
                    var idx = src.Select(c =>
                    {
                        double f = c - Math.Floor(c);
                        double k = rounding switch
                        {
                            "floor" => Math.Floor(c),
                            "ceil" => Math.Ceiling(c),
                            "round_prefer_ceil" => f == 0.5 ? Math.Ceiling(c) : Math.Round(c, MidpointRounding.AwayFromZero),
                            _ => f == 0.5 ? Math.Floor(c) : Math.Round(c, MidpointRounding.AwayFromZero),
                        };
                        return Math.Clamp((long)k, 0, n - 1);
                    }).ToArray();
                    using var index = tensor(idx, device: y.device);
                    y = y.index_select(d, index);
                }
                else
                {
                    var lo = new long[m];
                    var hi = new long[m];
                    var w = new float[m];
                    for (long i = 0; i < m; i++)
                    {
                        double c = Math.Clamp(src[i], 0, n - 1);
                        lo[i] = (long)Math.Floor(c);
                        hi[i] = Math.Min(lo[i] + 1, n - 1);
                        w[i] = (float)(c - lo[i]);
                    }
                    var shape = Enumerable.Repeat(1L, r).ToArray();
                    shape[d] = m;
                    using var li = tensor(lo, device: y.device);
                    using var hiIdx = tensor(hi, device: y.device);
                    using var wt = tensor(w, device: y.device).to(y.dtype).reshape(shape);
                    var a0 = y.index_select(d, li);
                    y = a0 + (y.index_select(d, hiIdx) - a0) * wt;
                }
            }
            return [ReferenceEquals(y, v) ? v.alias() : y];
        };
    }

    static double[] Doubles(Tensor t)
    {
        var c = t.to(ScalarType.Float64).cpu().contiguous();
        try { return c.data<double>().ToArray(); }
        finally { if (!ReferenceEquals(c, t)) c.Dispose(); }
    }

    static OpKernel Slice(Attributes a, int opset, int nin, int nout) => x =>
    {
        var v = x[0]!;
        long[] starts, ends, axes, steps;
        if (opset < 10)
        {
            starts = a.Ints("starts")!; ends = a.Ints("ends")!;
            axes = a.Ints("axes") ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps = Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        else
        {
            starts = Longs(x[1]!); ends = Longs(x[2]!);
            axes = nin > 3 && x[3] is { } ax ? Longs(ax) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps = nin > 4 && x[4] is { } st ? Longs(st) : Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        var y = v;
        for (int i = 0; i < axes.Length; i++)
        {
            long d = Axis(axes[i], v.dim()), n = v.shape[d], step = steps[i];
            if (step == 0) throw new BadInputException($"Node '{a.NodeName}': Slice step 0.");
            long s = starts[i], e = ends[i];
            if (s < 0) s += n;
            if (e < 0) e += n;
            long count;
            if (step > 0)
            {
                s = Math.Clamp(s, 0, n); e = Math.Clamp(e, 0, n);
                count = Math.Max(0, (e - s + step - 1) / step);
            }
            else
            {
                s = Math.Clamp(s, 0, n - 1); e = Math.Clamp(e, -1, n - 1);
                count = Math.Max(0, (s - e + (-step) - 1) / (-step));
            }
            if (step == 1) { y = y.narrow(d, s, count); continue; }
            var idx = new long[count];
            for (long k = 0; k < count; k++) idx[k] = s + k * step;
            using var index = tensor(idx, device: v.device);
            y = y.index_select(d, index);
        }
        return [ReferenceEquals(y, v) ? v.alias() : y];
    };

    static OpKernel Gather(Attributes a, int opset, int nin, int nout)
    {
        long axis = a.Int("axis", 0);
        return x =>
        {
            var v = x[0]!; var idx = x[1]!.to(ScalarType.Int64);
            long ax = Axis(axis, v.dim());
            long n = v.shape[ax];
            var fixedIdx = where(idx < S(0), idx + S(n), idx);
            var flat = fixedIdx.flatten();
            var picked = v.index_select(ax, flat);
            long[] shape = [.. v.shape.Take((int)ax), .. idx.shape, .. v.shape.Skip((int)ax + 1)];
            return [picked.reshape(shape)];
        };
    }

    static OpKernel Shape(Attributes a, int opset, int nin, int nout)
    {
        long? start = a.Has("start") ? a.Int("start", 0) : null;
        long? end = a.Has("end") ? a.Int("end", 0) : null;
        return x =>
        {
            var shape = x[0]!.shape;
            long r = shape.Length;
            long s = Math.Clamp(Axis(start ?? 0, r), 0, r), e = Math.Clamp(end is { } ev ? Axis(ev, r) : r, 0, r);
            return [tensor(shape.Skip((int)s).Take((int)Math.Max(0, e - s)).ToArray(), dtype: ScalarType.Int64)];
        };
    }

    static OpKernel Constant(Attributes a, int opset, int nin, int nout)
    {
        Tensor value;
        if (a.TensorAttr("value") is { } t) value = OnnxTensors.ToTensor(t, null);
        else if (a.Has("value_float")) value = tensor(a.Float("value_float", 0));
        else if (a.Floats("value_floats") is { } fs) value = tensor(fs);
        else if (a.Has("value_int")) value = tensor(a.Int("value_int", 0));
        else if (a.Ints("value_ints") is { } ls) value = tensor(ls);
        else throw Unsupported(a, $"Constant with attribute {string.Join(",", a.Names)}");
        value = value.detach();
        return x => [value.alias()];
    }

    static OpKernel ConstantOfShape(Attributes a, int opset, int nin, int nout)
    {
        using var v = a.TensorAttr("value") is { } t ? OnnxTensors.ToTensor(t, null) : tensor(0f);
        var dtype = v.dtype;
        double fill = v.to(ScalarType.Float64).flatten()[0].item<double>();
        return x =>
        {
            long[] shape = Longs(x[0]!);
            return [full(shape, S(fill), dtype: dtype)];
        };
    }

    static OpKernel Dropout(Attributes a, int opset, int nin, int nout) => x =>
    {
        if (nin > 2 && x[2] is { } training && Scalar(training) != 0)
            throw Unsupported(a, "Dropout in training mode");
        var outputs = new Tensor[nout];
        outputs[0] = x[0]!.alias();
        if (nout > 1) outputs[1] = ones_like(x[0]!, dtype: ScalarType.Bool);
        return outputs;
    };

    static OpKernel Softmax(Attributes a, int opset, int nin, int nout)
    {
        long axis = a.Int("axis", opset < 13 ? 1 : -1);
        return x =>
        {
            var v = x[0]!;
            long ax = Axis(axis, v.dim());
            if (opset >= 13) return [v.softmax(ax)];
            // Before opset 13: coerce to 2-D at 'axis', softmax over the second dimension.
            long outer = 1;
            for (int i = 0; i < ax; i++) outer *= v.shape[i];
            return [v.reshape(outer, -1).softmax(1).reshape(v.shape)];
        };
    }

    static OpKernel Cast(Attributes a, int opset, int nin, int nout)
    {
        int to = (int)a.Int("to", 0);
        ScalarType type = to switch
        {
            OnnxTensors.Float => ScalarType.Float32,
            OnnxTensors.Float16 => ScalarType.Float16,
            OnnxTensors.BFloat16 => ScalarType.BFloat16,
            OnnxTensors.Double => ScalarType.Float64,
            OnnxTensors.Int64 or OnnxTensors.UInt32 or OnnxTensors.UInt64 => ScalarType.Int64,
            OnnxTensors.Int32 or OnnxTensors.UInt16 => ScalarType.Int32,
            OnnxTensors.Int16 => ScalarType.Int16,
            OnnxTensors.Int8 => ScalarType.Int8,
            OnnxTensors.UInt8 => ScalarType.Byte,
            OnnxTensors.Bool => ScalarType.Bool,
            _ => throw Unsupported(a, $"Cast to {OnnxTensors.TypeName(to)}"),
        };
        // Reduced-precision floats are rounded to their precision, then held as float32 like every float tensor.
        if (type is ScalarType.Float16 or ScalarType.BFloat16) return x => [x[0]!.to(type).to(ScalarType.Float32)];
        return x => [x[0]!.to(type)];
    }
}
