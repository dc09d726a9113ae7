using Reverie.Objectives;
using Google.Protobuf;
using Reverie.Imaging;
using Reverie.Models;
using Reverie.Models.Onnx;
using Reverie.Models.Onnx.Proto;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Reverie.Style;

/// <summary>
/// Johnson et al.'s image transformation network for fast style transfer: a 9×9 convolution, two
/// stride-2 convolutions, five residual blocks, two upsampling layers and a final 9×9 convolution,
/// with instance normalization and reflection padding. The upsampling layers are nearest-neighbour
/// ×2 followed by a 3×3 convolution (Odena et al. 2016, as PyTorch's fast-neural-style example does):
/// the paper's transposed stride-2 convolutions overlap unevenly and print a checkerboard over the
/// whole picture. <c>transposed: true</c> builds the old layout, kept for comparison; networks
/// already trained with it are ONNX files and load as they always did.
/// It maps an RGB image in 0..1 to a stylized RGB image in 0..1 (a sigmoid at the end keeps the
/// loss network's input in range, which keeps training stable). Sides
/// should be multiples of 4 (<see cref="Stylizer"/> pads and crops).
/// </summary>
internal sealed class TransformerNet : nn.Module<Tensor, Tensor>
{
    sealed record ConvSpec(string Name, int In, int Out, int Kernel, int Stride, bool Transposed, bool Norm, bool Relu, bool Upsample = false);

    static readonly ConvSpec[] Head =
    [
        new("conv1", 3, 32, 9, 1, false, true, true),
        new("conv2", 32, 64, 3, 2, false, true, true),
        new("conv3", 64, 128, 3, 2, false, true, true),
    ];
    static ConvSpec[] Tail(bool transposed) =>
    [
        new("up1", 128, 64, 3, transposed ? 2 : 1, transposed, true, true, Upsample: !transposed),
        new("up2", 64, 32, 3, transposed ? 2 : 1, transposed, true, true, Upsample: !transposed),
        new("out", 32, 3, 9, 1, false, false, false),
    ];
    const int Blocks = 5;
    const double Epsilon = 1e-5;

    readonly ModuleList<nn.Module<Tensor, Tensor>> convs = new();
    readonly ModuleList<InstanceNorm2d> norms = new();
    readonly List<(ConvSpec Spec, int Conv, int Norm)> plan = new();

    /// <summary>Creates the network with weights from torch's global generator; <paramref name="transposed"/> builds the old, checkerboarding layout.</summary>
    public TransformerNet(bool transposed = false) : base(nameof(TransformerNet))
    {
        TorchRuntime.Initialize();
        void Add(ConvSpec s)
        {
            nn.Module<Tensor, Tensor> conv = s.Transposed
                ? nn.ConvTranspose2d(s.In, s.Out, s.Kernel, stride: s.Stride, padding: s.Kernel / 2, output_padding: 1)
                : nn.Conv2d(s.In, s.Out, s.Kernel, stride: s.Stride);
            convs.Add(conv);
            int norm = -1;
            if (s.Norm) { norms.Add(nn.InstanceNorm2d(s.Out, eps: Epsilon, affine: true)); norm = norms.Count - 1; }
            plan.Add((s, convs.Count - 1, norm));
        }
        foreach (var s in Head) Add(s);
        for (int b = 0; b < Blocks; b++)
        {
            Add(new($"res{b + 1}a", 128, 128, 3, 1, false, true, true));
            Add(new($"res{b + 1}b", 128, 128, 3, 1, false, true, false));
        }
        foreach (var s in Tail(transposed)) Add(s);
        RegisterComponents();
    }

    Tensor Layer(int i, Tensor x)
    {
        var (s, c, n) = plan[i];
        if (s.Upsample) x = nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        if (!s.Transposed) x = nn.functional.pad(x, [s.Kernel / 2, s.Kernel / 2, s.Kernel / 2, s.Kernel / 2], TorchSharp.PaddingModes.Reflect);
        x = convs[c].call(x);
        if (n >= 0) x = norms[n].call(x);
        return s.Relu ? nn.functional.relu(x) : x;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        int i = 0;
        for (; i < Head.Length; i++) x = Layer(i, x);
        for (int b = 0; b < Blocks; b++, i += 2) x = x + Layer(i + 1, Layer(i, x));
        for (; i < plan.Count; i++) x = Layer(i, x);
        return x.sigmoid();
    }

    /// <summary>Writes the network as an ONNX model (opset 11; input "image" [N,3,H,W] RGB 0..1, output "stylized").</summary>
    public byte[] ToOnnx()
    {
        var model = new ModelProto { IrVersion = 6, ProducerName = "reverie", Graph = new GraphProto { Name = "transformer_net" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 11 });
        var g = model.Graph;
        ValueInfoProto Value(string name)
        {
            var t = new TypeProto.Types.Tensor { ElemType = 1, Shape = new TensorShapeProto() };
            t.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
            t.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 3 });
            t.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "H" });
            t.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "W" });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = t } };
        }
        g.Input.Add(Value("image"));
        void Init(string name, Tensor t)
        {
            var p = new TensorProto { Name = name, DataType = 1 };
            p.Dims.AddRange(t.shape);
            p.FloatData.AddRange(t.detach().cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray());
            g.Initializer.Add(p);
        }
        void Init64(string name, long[] values)
        {
            var p = new TensorProto { Name = name, DataType = 7 };
            p.Dims.Add(values.Length);
            p.Int64Data.AddRange(values);
            g.Initializer.Add(p);
        }
        NodeProto Node(string op, string name, string[] inputs, string output, params AttributeProto[] attrs)
        {
            var n = new NodeProto { OpType = op, Name = name };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            n.Attribute.AddRange(attrs);
            g.Node.Add(n);
            return n;
        }
        static AttributeProto Ints(string name, params long[] v) { var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints }; a.Ints.AddRange(v); return a; }
        static AttributeProto Str(string name, string v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };
        static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

        string EmitLayer(int i, string x)
        {
            var (s, c, n) = plan[i];
            string y = x;
            if (s.Upsample)
            {
                var roi = new TensorProto { Name = $"{s.Name}.roi", DataType = 1 };
                roi.Dims.Add(0);
                g.Initializer.Add(roi);
                var scales = new TensorProto { Name = $"{s.Name}.scales", DataType = 1 };
                scales.Dims.Add(4);
                scales.FloatData.AddRange([1f, 1f, 2f, 2f]);
                g.Initializer.Add(scales);
                Node("Resize", $"{s.Name}/upsample", [y, $"{s.Name}.roi", $"{s.Name}.scales"], $"{s.Name}/upsampled",
                    Str("mode", "nearest"), Str("coordinate_transformation_mode", "asymmetric"), Str("nearest_mode", "floor"));
                y = $"{s.Name}/upsampled";
            }
            if (!s.Transposed)
            {
                int p = s.Kernel / 2;
                Init64($"{s.Name}.pads", [0, 0, p, p, 0, 0, p, p]);
                Node("Pad", $"{s.Name}/pad", [y, $"{s.Name}.pads"], $"{s.Name}/padded", Str("mode", "reflect"));
                y = $"{s.Name}/padded";
            }
            var conv = convs[c];
            var (weight, bias) = conv switch
            {
                Conv2d c2 => (c2.weight!, c2.bias!),
                ConvTranspose2d t2 => (t2.weight!, t2.bias!),
                _ => throw new InvalidOperationException("unexpected layer"),
            };
            Init($"{s.Name}.weight", weight);
            Init($"{s.Name}.bias", bias);
            if (s.Transposed)
                Node("ConvTranspose", $"{s.Name}/conv", [y, $"{s.Name}.weight", $"{s.Name}.bias"], $"{s.Name}/conv",
                    Ints("kernel_shape", s.Kernel, s.Kernel), Ints("strides", s.Stride, s.Stride), Ints("pads", s.Kernel / 2, s.Kernel / 2, s.Kernel / 2, s.Kernel / 2), Ints("output_padding", 1, 1));
            else
                Node("Conv", $"{s.Name}/conv", [y, $"{s.Name}.weight", $"{s.Name}.bias"], $"{s.Name}/conv",
                    Ints("kernel_shape", s.Kernel, s.Kernel), Ints("strides", s.Stride, s.Stride), Ints("pads", 0, 0, 0, 0));
            y = $"{s.Name}/conv";
            if (n >= 0)
            {
                Init($"{s.Name}.norm.weight", norms[n].weight!);
                Init($"{s.Name}.norm.bias", norms[n].bias!);
                Node("InstanceNormalization", $"{s.Name}/norm", [y, $"{s.Name}.norm.weight", $"{s.Name}.norm.bias"], $"{s.Name}/norm", Float("epsilon", (float)Epsilon));
                y = $"{s.Name}/norm";
            }
            if (s.Relu) { Node("Relu", $"{s.Name}/relu", [y], $"{s.Name}/relu"); y = $"{s.Name}/relu"; }
            return y;
        }

        string x = "image";
        int i = 0;
        for (; i < Head.Length; i++) x = EmitLayer(i, x);
        for (int b = 0; b < Blocks; b++, i += 2)
        {
            string r = EmitLayer(i + 1, EmitLayer(i, x));
            Node("Add", $"res{b + 1}/add", [x, r], $"res{b + 1}/sum");
            x = $"res{b + 1}/sum";
        }
        for (; i < plan.Count; i++) x = EmitLayer(i, x);
        Node("Sigmoid", "stylized", [x], "stylized");
        g.Output.Add(Value("stylized"));
        return model.ToByteArray();
    }
}

/// <summary>
/// Applies a style network (Reverie's own, or any ONNX image-to-image graph) to images of any size.
/// A file is checked by Reverie's importer and then run by ONNX Runtime, which only runs forward
/// graphs but runs them fastest (the importer took 3.4× its time at 720×720); a module in memory
/// (a network being trained) runs through TorchSharp.
/// </summary>
internal sealed class Stylizer : IDisposable
{
    readonly Func<Tensor, Tensor> _forward;
    readonly IDisposable? _owned;

    /// <summary>Wraps a network module.</summary>
    public Stylizer(nn.Module<Tensor, Tensor> net, bool owns = false)
    {
        _forward = net.call;
        _owned = owns ? net : null;
    }

    Stylizer(Func<Tensor, Tensor> forward, IDisposable owned)
    {
        _forward = forward;
        _owned = owned;
    }

    /// <summary>Loads an ONNX style network (input an RGB image, output an RGB image); <paramref name="onnxRuntime"/> false runs it through the importer.</summary>
    public static Stylizer Load(string path, bool onnxRuntime = true)
    {
        var graph = OnnxGraph.Load(path);
        if (graph.InputShapes.Count != 1 || graph.InputShapes[0] is { Length: > 0 } s && (s.Length != 4 || s[1] is not (3 or -1)))
        {
            graph.Dispose();
            throw new BadInputException($"'{path}' is not an image-to-image network: it should take one [N,3,H,W] input.");
        }
        if (!onnxRuntime) return new Stylizer(graph, owns: true);
        graph.Dispose();
        return new Stylizer(OrtForward(path, out var session), session);
    }

    /// <summary>A forward function that runs the file in ONNX Runtime, with as many threads as TorchSharp uses.</summary>
    static Func<Tensor, Tensor> OrtForward(string path, out Microsoft.ML.OnnxRuntime.InferenceSession session)
    {
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = Math.Max(1, get_num_threads()), InterOpNumThreads = 1 };
        Microsoft.ML.OnnxRuntime.InferenceSession s;
        try { s = new Microsoft.ML.OnnxRuntime.InferenceSession(path, options); }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new BadInputException($"ONNX Runtime cannot load '{BadInputException.Shown(path)}' ({BadInputException.Shown(e.Message.Split('\n')[0], 120)}).");
        }
        session = s;
        string input = s.InputMetadata.Keys.Single();
        return x =>
        {
            var data = x.to(CPU).contiguous().data<float>().ToArray();
            var dims = x.shape.Select(d => (int)d).ToArray();
            var tensorIn = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(data, dims);
            Microsoft.ML.OnnxRuntime.IDisposableReadOnlyCollection<Microsoft.ML.OnnxRuntime.DisposableNamedOnnxValue> results;
            try { results = s.Run([Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor(input, tensorIn)]); }
            catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e) { throw new ReverieException(e.Message.Split('\n')[0]); }
            using (results)
            {
                var output = results.First().AsTensor<float>();
                var shape = output.Dimensions.ToArray().Select(d => (long)d).ToArray();
                return tensor(output.ToArray(), shape).to(x.device);
            }
        };
    }

    /// <summary>
    /// Stylizes [1,3,H,W] in 0..1 and returns [1,3,H,W] in 0..1. The image is reflect-padded to a
    /// multiple of 4 and cropped back. Images whose longest side exceeds <paramref name="tile"/>
    /// are done tile by tile, each with a 32-pixel margin of context.
    /// </summary>
    public Tensor Apply(Tensor image, int tile = 1024)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long h = image.shape[2], w = image.shape[3];
        Tensor result;
        if (tile <= 0 || (h <= tile && w <= tile)) result = Whole(image);
        else
        {
            const int margin = 32;
            result = zeros_like(image);
            for (long y = 0; y < h; y += tile)
                for (long x = 0; x < w; x += tile)
                {
                    long th = Math.Min(tile, h - y), tw = Math.Min(tile, w - x);
                    long y0 = Math.Max(0, y - margin), x0 = Math.Max(0, x - margin);
                    long y1 = Math.Min(h, y + th + margin), x1 = Math.Min(w, x + tw + margin);
                    var part = Whole(image.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
                    result.narrow(2, y, th).narrow(3, x, tw).copy_(part.narrow(2, y - y0, th).narrow(3, x - x0, tw));
                }
        }
        return result.clamp(S(0), S(1)).MoveToOuterDisposeScope();
    }

    Tensor Whole(Tensor image)
    {
        long h = image.shape[2], w = image.shape[3];
        var x = Optimization.Capture.PadTo(image, 4);
        Tensor y;
        try { y = _forward(x.to(ScalarType.Float32)); }
        catch (ReverieException ex) when (ex is not BadInputException)
        {
            throw new BadInputException($"The network cannot stylize a {w}x{h} image ({ex.Message}); a style network takes and gives [N,3,H,W] images of any size.");
        }
        if (y.dim() != 4 || y.shape[1] != 3)
            throw new BadInputException($"The style network's output has shape [{string.Join(",", y.shape)}]; an image-to-image network gives [N,3,H,W].");
        if (y.shape[2] < h || y.shape[3] < w) y = nn.functional.interpolate(y, [x.shape[2], x.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        return y.narrow(2, 0, h).narrow(3, 0, w);
    }

    /// <inheritdoc/>
    public void Dispose() => _owned?.Dispose();
}

/// <summary>Options of fast-style training.</summary>
internal sealed record FastStyleOptions
{
    /// <summary>Side of the square training crops.</summary>
    public int Size { get; init; } = 256;
    /// <summary>Passes over the data set.</summary>
    public int Epochs { get; init; } = 2;
    /// <summary>Crops per batch.</summary>
    public int Batch { get; init; } = 4;
    /// <summary>Random crops drawn from each image per epoch.</summary>
    public int CropsPerImage { get; init; } = 8;
    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Weight of the content (feature) loss.</summary>
    public double ContentWeight { get; init; } = 1;
    /// <summary>Weight of the style (Gram) loss.</summary>
    public double StyleWeight { get; init; } = 20;
    /// <summary>Weight of the total-variation loss (0..255 scale).</summary>
    public double TvWeight { get; init; } = 1e-6;
    /// <summary>Content layers of the loss network.</summary>
    public IReadOnlyList<string> ContentLayers { get; init; } = [];
    /// <summary>Style layers of the loss network.</summary>
    public IReadOnlyList<string> StyleLayers { get; init; } = [];
    /// <summary>Seed of the weights and the crops.</summary>
    public int Seed { get; init; }
    /// <summary>Train the old layout, with transposed convolutions (for comparisons only; it prints a checkerboard).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool TransposedUpsampling { get; init; }

    /// <summary>Raises <see cref="BadInputException"/> for values that cannot run.</summary>
    public void Validate()
    {
        ValidateNumbers();
        if (StyleLayers.Count == 0 || ContentLayers.Count == 0) throw new BadInputException("Fast style needs content and style layers.");
    }

    /// <summary>Checks the numbers (layers are checked once the loss network is known).</summary>
    public void ValidateNumbers()
    {
        if (Size < 32 || Size > 1024 || Size % 4 != 0) throw new BadInputException($"--size must be a multiple of 4 from 32 to 1024; got {Size}.");
        if (Epochs < 1 || Epochs > 10_000) throw new BadInputException($"--epochs must be from 1 to 10000; got {Epochs}.");
        if (Batch < 1 || Batch > 64) throw new BadInputException($"--batch must be from 1 to 64; got {Batch}.");
        if (CropsPerImage < 1) throw new BadInputException($"--crops must be at least 1; got {CropsPerImage}.");
        if (!(LearningRate > 0) || LearningRate > 1) throw new BadInputException($"--lr must be above 0 and at most 1; got {LearningRate}.");
        Check.Finite(("--content-weight", ContentWeight), ("--style-weight", StyleWeight), ("--tv-weight", TvWeight));
        if (ContentWeight < 0 || StyleWeight < 0 || TvWeight < 0) throw new BadInputException("--content-weight, --style-weight and --tv-weight must not be negative.");
    }
}

/// <summary>One training iteration's perceptual loss: weighted content, style and TV parts and their sum.</summary>
internal sealed record FastStyleLoss(int Iteration, int Epoch, double Content, double Style, double Tv, double Total);

/// <summary>
/// Trains a <see cref="TransformerNet"/> for one style with Johnson et al.'s perceptual loss: the
/// loss network's features of the output against those of the input crop (content), its Gram
/// matrices against the style image's (style), and total variation.
/// </summary>
internal sealed class FastStyleTrainer
{
    /// <summary>The network being trained.</summary>
    public TransformerNet Net { get; }
    /// <summary>The options.</summary>
    public FastStyleOptions Options { get; }
    /// <summary>Every iteration's loss.</summary>
    public List<FastStyleLoss> History { get; } = new();
    /// <summary>Steps skipped because their gradient was not finite.</summary>
    public int Skipped { get; private set; }

    readonly INetwork _loss;
    readonly IReadOnlyList<Tensor> _images;
    readonly Dictionary<string, Tensor> _styleGrams = new();
    readonly List<string> _contentLayers, _styleLayers;

    /// <summary>Prepares the style targets; <paramref name="images"/> are the training photos [1,3,H,W].</summary>
    public FastStyleTrainer(INetwork lossNetwork, Tensor style, IReadOnlyList<Tensor> images, FastStyleOptions options)
    {
        options.Validate();
        if (images.Count == 0) throw new BadInputException("The training data has no images.");
        Options = options;
        _loss = lossNetwork;
        _images = images;
        _contentLayers = options.ContentLayers.Select(lossNetwork.ResolveLayer).ToList();
        _styleLayers = options.StyleLayers.Select(lossNetwork.ResolveLayer).ToList();
        using (no_grad())
        {
            double f = (double)options.Size / Math.Max(style.shape[2], style.shape[3]);
            var s = ImageIO.Resize(style, (int)Math.Round(style.shape[2] * f), (int)Math.Round(style.shape[3] * f));
            var acts = lossNetwork.Forward(s, _styleLayers);
            foreach (var l in _styleLayers) _styleGrams[l] = Gram.Of(acts[l]).detach().clone();
        }
        Net = new TransformerNet(options.TransposedUpsampling);
        Optimization.Init.Reset(Net, options.Seed);
    }

    /// <summary>A random square crop of an image, resized to the training size.</summary>
    static Tensor Crop(Tensor image, int size, Random rng)
    {
        long h = image.shape[2], w = image.shape[3], side = Math.Min(h, w);
        long s = Math.Max(Math.Min(side, size), (long)(side * (0.5 + 0.5 * rng.NextDouble())));
        long y = rng.NextInt64(h - s + 1), x = rng.NextInt64(w - s + 1);
        var c = image.narrow(2, y, s).narrow(3, x, s);
        if (rng.Next(2) == 1) c = c.flip(3);
        return ImageIO.Resize(c, size, size);
    }

    /// <summary>The perceptual loss of outputs against their inputs (weighted parts).</summary>
    public (Tensor Total, double Content, double Style, double Tv) Loss(Tensor inputs, Tensor outputs)
    {
        var o = Options;
        var layers = _contentLayers.Concat(_styleLayers).Distinct().ToList();
        Dictionary<string, Tensor> target;
        using (no_grad())
            target = _loss.Forward(inputs, _contentLayers).ToDictionary(kv => kv.Key, kv => kv.Value.detach());
        var acts = _loss.Forward(outputs, layers);
        Tensor content = zeros(1), style = zeros(1);
        foreach (var l in _contentLayers) content = content + (acts[l] - target[l]).pow(S(2)).mean();
        foreach (var l in _styleLayers) style = style + (Gram.Of(acts[l]) - _styleGrams[l]).pow(S(2)).mean();
        var tv = StyleTransfer.TotalVariation(outputs) / S(outputs.shape[0]);
        var total = S(o.ContentWeight) * content + S(o.StyleWeight) * style + S(o.TvWeight) * tv;
        return (total, o.ContentWeight * content.item<float>(), o.StyleWeight * style.item<float>(), o.TvWeight * tv.item<float>());
    }

    /// <summary>Trains; reports every iteration.</summary>
    public void Run(IProgress<(FastStyleLoss Loss, int Iterations)>? progress = null, CancellationToken cancel = default)
    {
        var o = Options;
        var rng = new Random(o.Seed);
        using var adam = optim.Adam(Net.parameters(), o.LearningRate);
        int perEpoch = (_images.Count * o.CropsPerImage + o.Batch - 1) / o.Batch, total = perEpoch * o.Epochs, it = 0;
        for (int epoch = 1; epoch <= o.Epochs && !cancel.IsCancellationRequested; epoch++)
            for (int b = 0; b < perEpoch && !cancel.IsCancellationRequested; b++)
            {
                using var scope = NewDisposeScope();
                using var pause = GcPause.Begin(); // TorchSharp's own temporary Scalars stay alive through the step
                var batch = cat(Enumerable.Range(0, o.Batch).Select(_ => Crop(_images[rng.Next(_images.Count)], o.Size, rng)).ToArray(), 0);
                Tensor loss = null!;
                double c = 0, s = 0, tv = 0, norm = double.NaN;
                // A step whose gradient is not finite is computed once more from the same batch: the
                // computation is deterministic, so a second non-finite gradient is the batch's own, while
                // a finite one means the first was TorchSharp's temporary-Scalar race (a value freed while
                // libtorch read it), which no guard here has fully closed (issue 36).
                for (int attempt = 0; attempt < 2 && !double.IsFinite(norm); attempt++)
                {
                    adam.zero_grad();
                    var outputs = Net.call(batch);
                    (loss, c, s, tv) = Loss(batch, outputs);
                    if (!double.IsFinite(loss.item<float>()))
                        throw new ReverieException($"Training diverged at iteration {it + 1} (content {c:G3}, style {s:G3}, tv {tv:G3}); try a lower --lr or --style-weight.");
                    loss.backward();
                    norm = nn.utils.clip_grad_norm_(Net.parameters(), 1e30);
                }
                // A step whose gradient is still not finite is skipped (as mixed-precision trainers do),
                // so one bad batch cannot poison the weights.
                if (double.IsFinite(norm)) adam.step();
                else if (++Skipped > 10) throw new ReverieException($"Training diverged: {Skipped} steps had non-finite gradients; try a lower --lr or --style-weight.");
                var l = new FastStyleLoss(++it, epoch, c, s, tv, loss.item<float>());
                History.Add(l);
                progress?.Report((l, total));
            }
    }
}
