using System.IO.Compression;
using Reverie.Imaging;
using static TorchSharp.torch;

namespace Reverie.Training;

/// <summary>
/// A labelled image data set. Images come out as RGB float tensors [N,3,H,W] in 0..1 at the data
/// set's own size (gray data sets repeat the gray value in the three channels).
/// </summary>
internal interface IImageDataset
{
    /// <summary>A short description (source and split).</summary>
    string Name { get; }
    /// <summary>Class names; labels index into this list.</summary>
    IReadOnlyList<string> Classes { get; }
    /// <summary>Number of examples.</summary>
    int Count { get; }
    /// <summary>Image height.</summary>
    int Height { get; }
    /// <summary>Image width.</summary>
    int Width { get; }
    /// <summary>True when the images are gray.</summary>
    bool Gray { get; }
    /// <summary>Label of example <paramref name="index"/>.</summary>
    int Label(int index);
    /// <summary>The images of the given examples, RGB [N,3,H,W] in 0..1.</summary>
    Tensor Images(IReadOnlyList<int> indices);
}

/// <summary>Helpers that build, split and filter data sets.</summary>
internal static class Datasets
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the IDX files.</summary>
    public const string FashionMnistDir = "/usr/share/datasets/fashion-mnist";

    /// <summary>Fashion-MNIST's ten classes, in label order.</summary>
    public static readonly string[] FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Opens a data set by name: <c>fashion-mnist</c> (Debian's IDX files, or $REVERIE_FASHION_MNIST),
    /// <c>textures</c> (generated) or the path of an ImageFolder (one subfolder per class).
    /// <paramref name="test"/> selects the test split (Fashion-MNIST's t10k; textures drawn from a
    /// disjoint seed range); an ImageFolder has no test split of its own (use --val-split).
    /// </summary>
    public static IImageDataset Open(string source, bool test, int textureCount = 0, int imageSize = 0)
    {
        switch (source.ToLowerInvariant())
        {
            case "fashion-mnist" or "fashion":
                string dir = Environment.GetEnvironmentVariable("REVERIE_FASHION_MNIST") is { Length: > 0 } d ? d : FashionMnistDir;
                return FashionMnist.Load(dir, test);
            case "textures":
                int n = textureCount > 0 ? textureCount : test ? 2000 : 16000;
                return new TextureDataset(n, test ? TextureDataset.TestSeed : TextureDataset.TrainSeed, imageSize > 0 ? imageSize : 128);
            default:
                if (!Directory.Exists(source))
                    throw new BadInputException($"Data '{source}' is neither a folder nor a known data set (fashion-mnist, textures).");
                if (test) throw new BadInputException($"'{source}' is an ImageFolder, which has no separate test split; evaluate on another folder or train with --val-split.");
                return ImageFolder.Load(source, imageSize > 0 ? imageSize : 128);
        }
    }

    /// <summary>The examples whose classes are named, relabelled 0..K-1 in the order given.</summary>
    public static IImageDataset SelectClasses(IImageDataset data, IReadOnlyList<string> classes)
    {
        if (classes.Count == 0) throw new BadInputException($"--classes names no class; name at least one of {data.Name}'s: {string.Join(", ", data.Classes.Take(10))}{(data.Classes.Count > 10 ? ", …" : "")}.");
        var map = new Dictionary<int, int>();
        for (int k = 0; k < classes.Count; k++)
        {
            int i = IndexOfClass(data, classes[k]);
            if (!map.TryAdd(i, k)) throw new BadInputException($"Class '{classes[k]}' is named twice.");
        }
        var idx = Enumerable.Range(0, data.Count).Where(i => map.ContainsKey(data.Label(i))).ToArray();
        return new Subset(data, idx, classes.Select(c => data.Classes[IndexOfClass(data, c)]).ToList(), l => map[l]);
    }

    static int IndexOfClass(IImageDataset data, string name)
    {
        for (int i = 0; i < data.Classes.Count; i++)
            if (string.Equals(data.Classes[i], name, StringComparison.OrdinalIgnoreCase)) return i;
        throw new BadInputException($"'{data.Name}' has no class '{name}'; its classes: {string.Join(", ", data.Classes)}.");
    }

    /// <summary>At most <paramref name="perClass"/> examples of each class, chosen by a seeded shuffle.</summary>
    public static IImageDataset PerClass(IImageDataset data, int perClass, int seed)
    {
        if (perClass < 1) throw new BadInputException($"--per-class must be at least 1; got {perClass}.");
        var order = Shuffled(data.Count, new Random(seed));
        var counts = new int[data.Classes.Count];
        var keep = order.Where(i => counts[data.Label(i)]++ < perClass).Order().ToArray();
        return new Subset(data, keep, data.Classes, l => l);
    }

    /// <summary>Splits off a seeded, class-stratified fraction for validation.</summary>
    public static (IImageDataset Train, IImageDataset Validation) Split(IImageDataset data, double fraction, int seed)
    {
        if (fraction is <= 0 or >= 1) throw new BadInputException($"--val-split must be between 0 and 1; got {fraction}.");
        var order = Shuffled(data.Count, new Random(seed ^ 0x5eed));
        var byClass = order.GroupBy(data.Label);
        var val = new List<int>();
        foreach (var g in byClass)
        {
            var list = g.ToList();
            val.AddRange(list.Take((int)Math.Round(list.Count * fraction)));
        }
        var valSet = val.ToHashSet();
        var train = Enumerable.Range(0, data.Count).Where(i => !valSet.Contains(i)).ToArray();
        if (train.Length == 0 || val.Count == 0) throw new BadInputException($"'{data.Name}' has too few images ({data.Count}) to split off {fraction:P0} for validation.");
        return (new Subset(data, train, data.Classes, l => l, "train"), new Subset(data, val.Order().ToArray(), data.Classes, l => l, "validation"));
    }

    /// <summary>A seeded permutation of 0..n-1.</summary>
    public static int[] Shuffled(int n, Random rng)
    {
        var a = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(a);
        return a;
    }

    /// <summary>
    /// The network's output index for each class of <paramref name="data"/>, matched by name
    /// (case-insensitive), or by position when the network has no labels.
    /// </summary>
    public static long[] ClassMap(Models.INetwork net, IImageDataset data)
    {
        var map = new long[data.Classes.Count];
        for (int i = 0; i < map.Length; i++)
        {
            if (net.Labels is null) { map[i] = i; continue; }
            int j = -1;
            for (int n = 0; n < net.Labels.Count && j < 0; n++)
                if (string.Equals(net.Labels[n], data.Classes[i], StringComparison.OrdinalIgnoreCase)) j = n;
            map[i] = j >= 0 ? j : throw new BadInputException($"{net.Name} has no class '{data.Classes[i]}' (a class of {data.Name}); its classes: {string.Join(", ", net.Labels.Take(20))}{(net.Labels.Count > 20 ? ", …" : "")}.");
        }
        return map;
    }

    /// <summary>Images resized (bilinear) to a network's input size, or unchanged when they have it.</summary>
    public static Tensor FitTo(Tensor images, Models.InputSpec input) =>
        images.shape[2] == input.Height && images.shape[3] == input.Width ? images
        : nn.functional.interpolate(images, [input.Height, input.Width], mode: InterpolationMode.Bilinear, align_corners: false);

    /// <summary>
    /// A seed mixed from several numbers, the same in every process (unlike <see cref="HashCode.Combine{T1,T2,T3}"/>,
    /// which .NET randomizes per process): SplitMix64's finalizer over the values in turn.
    /// </summary>
    public static int Seed(params long[] values)
    {
        ulong h = 0x9E3779B97F4A7C15;
        foreach (var v in values)
        {
            h ^= unchecked((ulong)v);
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EB;
            h ^= h >> 31;
        }
        return unchecked((int)h);
    }

    /// <summary>Counts per class.</summary>
    public static int[] ClassCounts(IImageDataset data)
    {
        var c = new int[data.Classes.Count];
        for (int i = 0; i < data.Count; i++) c[data.Label(i)]++;
        return c;
    }

    sealed class Subset(IImageDataset inner, int[] indices, IReadOnlyList<string> classes, Func<int, int> relabel, string? part = null) : IImageDataset
    {
        public string Name => part is null ? inner.Name : $"{inner.Name} ({part})";
        public IReadOnlyList<string> Classes => classes;
        public int Count => indices.Length;
        public int Height => inner.Height;
        public int Width => inner.Width;
        public bool Gray => inner.Gray;
        public int Label(int index) => relabel(inner.Label(indices[index]));
        public Tensor Images(IReadOnlyList<int> idx) => inner.Images(idx.Select(i => indices[i]).ToList());
    }
}

/// <summary>Fashion-MNIST (Zalando): 28×28 gray images of 10 kinds of clothing, read from IDX files (optionally gzipped).</summary>
internal sealed class FashionMnist : IImageDataset
{
    readonly byte[] _pixels, _labels;

    FashionMnist(string name, byte[] pixels, byte[] labels) { Name = name; _pixels = pixels; _labels = labels; }

    /// <summary>Reads the training (60 000) or test (10 000) split from <paramref name="dir"/>.</summary>
    public static FashionMnist Load(string dir, bool test)
    {
        string prefix = test ? "t10k" : "train";
        string images = Find(dir, $"{prefix}-images-idx3-ubyte"), labels = Find(dir, $"{prefix}-labels-idx1-ubyte");
        var (px, shape) = ReadIdx(images, 3);
        var (lb, lshape) = ReadIdx(labels, 1);
        if (shape[1] != 28 || shape[2] != 28) throw new BadInputException($"'{images}' holds {shape[1]}x{shape[2]} images; Fashion-MNIST's are 28x28.");
        if (lshape[0] != shape[0]) throw new BadInputException($"'{images}' has {shape[0]} images but '{labels}' has {lshape[0]} labels.");
        if (lb.Any(b => b > 9)) throw new BadInputException($"'{labels}' has labels outside 0..9.");
        return new FashionMnist($"Fashion-MNIST {(test ? "test" : "train")}", px, lb);
    }

    static string Find(string dir, string stem)
    {
        foreach (var f in new[] { stem, stem + ".gz" })
            if (File.Exists(Path.Combine(dir, f))) return Path.Combine(dir, f);
        throw new BadInputException($"Fashion-MNIST's '{stem}' is not in {dir}; install Debian's dataset-fashion-mnist (scripts/install-test-deps.sh does) or set REVERIE_FASHION_MNIST to a folder with the IDX files.");
    }

    /// <summary>Reads an IDX file of unsigned bytes with <paramref name="dims"/> dimensions.</summary>
    public static (byte[] Data, int[] Shape) ReadIdx(string path, int dims)
    {
        try
        {
            using var file = Imaging.InputFile.OpenRead(path, "data set file", 1L << 30, confined: false);
            using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
            var head = new byte[4];
            s.ReadExactly(head);
            if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != dims)
                throw new BadInputException($"'{path}' is not an IDX file of {dims}-D unsigned bytes.");
            var shape = new int[dims];
            long total = 1;
            for (int d = 0; d < dims; d++)
            {
                s.ReadExactly(head);
                shape[d] = (head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3];
                if (shape[d] <= 0) throw new BadInputException($"'{path}' has a bad dimension {shape[d]}.");
                total = checked(total * shape[d]);
            }
            if (total > 1L << 30) throw new BadInputException($"'{path}' claims {total} values, more than Reverie reads.");
            var data = new byte[total];
            s.ReadExactly(data);
            return (data, shape);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or OverflowException)
        {
            throw new BadInputException($"'{path}' is truncated or corrupt: {e.Message}");
        }
    }

    /// <inheritdoc/>
    public string Name { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes => Datasets.FashionMnistClasses;
    /// <inheritdoc/>
    public int Count => _labels.Length;
    /// <inheritdoc/>
    public int Height => 28;
    /// <inheritdoc/>
    public int Width => 28;
    /// <inheritdoc/>
    public bool Gray => true;
    /// <inheritdoc/>
    public int Label(int index) => _labels[index];

    /// <inheritdoc/>
    public Tensor Images(IReadOnlyList<int> indices)
    {
        var buf = new float[indices.Count * 784];
        for (int k = 0; k < indices.Count; k++)
        {
            int src = indices[k] * 784;
            for (int j = 0; j < 784; j++) buf[k * 784 + j] = _pixels[src + j] * (1f / 255f);
        }
        return tensor(buf, [indices.Count, 1, 28, 28]).expand(-1, 3, -1, -1);
    }
}

/// <summary>
/// The ImageFolder layout: one subfolder per class holding PNG or JPEG images. Every image is
/// resized (shorter side) and centre-cropped to a square of <c>size</c> pixels once, when loaded.
/// </summary>
internal sealed class ImageFolder : IImageDataset
{
    readonly List<byte[]> _images = new();
    readonly List<int> _labels = new();
    readonly int _size;

    ImageFolder(string name, IReadOnlyList<string> classes, int size) { Name = name; Classes = classes; _size = size; }

    /// <summary>Loads every image under <paramref name="dir"/>'s class folders.</summary>
    public static ImageFolder Load(string dir, int size)
    {
        if (size is < 8 or > 1024) throw new BadInputException($"The image size must be from 8 to 1024; got {size}.");
        var classDirs = Directory.GetDirectories(dir).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        if (classDirs.Count < 2) throw new BadInputException($"'{dir}' must hold one subfolder per class, at least two; it has {classDirs.Count}.");
        var set = new ImageFolder(Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), classDirs.Select(Path.GetFileName).ToList()!, size);
        for (int c = 0; c < classDirs.Count; c++)
        {
            var files = Directory.GetFiles(classDirs[c]).Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg").Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new BadInputException($"Class folder '{classDirs[c]}' has no PNG or JPEG images.");
            foreach (var f in files)
            {
                using var scope = NewDisposeScope();
                using var img = ImageIO.Load(f);
                var sq = CenterSquare(img, size);
                var bytes = (sq.squeeze(0).mul(S(255)).round().clamp(S(0), S(255))).to(ScalarType.Byte).contiguous();
                set._images.Add(bytes.data<byte>().ToArray());
                set._labels.Add(c);
            }
        }
        return set;
    }

    static Tensor CenterSquare(Tensor img, int size)
    {
        long h = img.shape[2], w = img.shape[3];
        double f = (double)size / Math.Min(h, w);
        int nh = Math.Max(size, (int)Math.Round(h * f)), nw = Math.Max(size, (int)Math.Round(w * f));
        var r = ImageIO.Resize(img, nh, nw);
        return r[.., .., ((nh - size) / 2)..((nh - size) / 2 + size), ((nw - size) / 2)..((nw - size) / 2 + size)];
    }

    /// <inheritdoc/>
    public string Name { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes { get; }
    /// <inheritdoc/>
    public int Count => _labels.Count;
    /// <inheritdoc/>
    public int Height => _size;
    /// <inheritdoc/>
    public int Width => _size;
    /// <inheritdoc/>
    public bool Gray => false;
    /// <inheritdoc/>
    public int Label(int index) => _labels[index];

    /// <inheritdoc/>
    public Tensor Images(IReadOnlyList<int> indices)
    {
        int n = _size * _size * 3;
        var buf = new byte[indices.Count * n];
        for (int k = 0; k < indices.Count; k++) _images[indices[k]].CopyTo(buf, k * n);
        return tensor(buf, [indices.Count, 3, _size, _size]).to(ScalarType.Float32).div_(S(255f));
    }
}

/// <summary>Labelled images already in memory: RGB [N,3,H,W] in 0..1 and one label each.</summary>
internal sealed class TensorDataset : IImageDataset
{
    readonly Tensor _images;
    readonly int[] _labels;

    /// <summary>Wraps <paramref name="images"/> (kept as a detached copy) with their labels.</summary>
    public TensorDataset(string name, Tensor images, IReadOnlyList<int> labels, IReadOnlyList<string> classes)
    {
        if (images.dim() != 4 || images.shape[1] != 3) throw new BadInputException($"Images must be RGB [N,3,H,W]; got [{string.Join(",", images.shape)}].");
        if (images.shape[0] != labels.Count) throw new BadInputException($"{images.shape[0]} images but {labels.Count} labels.");
        if (labels.Any(l => l < 0 || l >= classes.Count)) throw new BadInputException($"Labels must be from 0 to {classes.Count - 1}.");
        _images = images.detach().to(ScalarType.Float32).cpu().clone();
        _labels = labels.ToArray();
        Name = name; Classes = classes;
    }

    /// <inheritdoc/>
    public string Name { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes { get; }
    /// <inheritdoc/>
    public int Count => _labels.Length;
    /// <inheritdoc/>
    public int Height => (int)_images.shape[2];
    /// <inheritdoc/>
    public int Width => (int)_images.shape[3];
    /// <inheritdoc/>
    public bool Gray => false;
    /// <inheritdoc/>
    public int Label(int index) => _labels[index];
    /// <inheritdoc/>
    public Tensor Images(IReadOnlyList<int> indices) => _images.index_select(0, tensor(indices.Select(i => (long)i).ToArray()));
}
