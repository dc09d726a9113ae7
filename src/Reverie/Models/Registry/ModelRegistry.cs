using System.Text.Json;
using System.Text.Json.Serialization;

namespace Reverie.Models.Registry;

/// <summary>Where a model stands in the cache.</summary>
public enum ModelStatus
{
    /// <summary>Not downloaded.</summary>
    Missing,
    /// <summary>Installed and its hash matches the registry's.</summary>
    Verified,
    /// <summary>Installed with <c>--force</c> or added without a known hash.</summary>
    Unverified,
    /// <summary>Built into the library; nothing to download.</summary>
    Embedded,
    /// <summary>Brought by a NuGet package with Reverie's build, and its hash matches; nothing to download.</summary>
    Packaged,
}

/// <summary>
/// Named models: the built-in entries, extended or overridden by a user registry file
/// (<c>$REVERIE_REGISTRY</c>, else <c>$XDG_CONFIG_HOME/reverie/models.json</c>), and the cache of
/// their weights (<c>$REVERIE_CACHE</c>, else <c>$XDG_CACHE_HOME/reverie</c>, else <c>~/.cache/reverie</c>).
/// </summary>
public sealed class ModelRegistry
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNameCaseInsensitive = true,
    };

    sealed record RegistryFile(List<ModelEntry> Models);

    readonly Dictionary<string, ModelEntry> _entries = new(StringComparer.OrdinalIgnoreCase);
    readonly HashSet<string> _userNames = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The cache folder.</summary>
    public string CacheDir { get; }
    /// <summary>The user registry file.</summary>
    public string UserRegistryPath { get; }
    /// <summary>When true, nothing is downloaded.</summary>
    public bool Offline { get; init; }

    /// <summary>Opens the registry with the given (or the environment's) locations.</summary>
    public ModelRegistry(string? cacheDir = null, string? userRegistry = null)
    {
        CacheDir = cacheDir ?? DefaultCacheDir();
        UserRegistryPath = userRegistry ?? DefaultUserRegistry();
        foreach (var e in ParseRegistry(Labels.ReadResource("models.json"), "the built-in registry", trusted: true)) _entries[e.Name] = e;
        if (File.Exists(UserRegistryPath))
        {
            foreach (var e in ParseRegistry(ReadUserRegistry(), UserRegistryPath))
            {
                _entries[e.Name] = e;
                _userNames.Add(e.Name);
            }
        }
    }

    static IEnumerable<ModelEntry> ParseRegistry(string json, string what, bool trusted = false)
    {
        try
        {
            var file = JsonSerializer.Deserialize<RegistryFile>(json, Json);
            var models = file?.Models ?? new List<ModelEntry>();
            foreach (var m in models) m.Check(what, trusted);
            return models;
        }
        catch (JsonException e)
        {
            throw new BadInputException($"The model registry {what} is not valid JSON: {e.Message}", e);
        }
    }

    static string Home() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    /// <summary>The largest weights file installed: 8 GB.</summary>
    internal const long MaxWeightsBytes = 8L << 30;

    /// <summary>The user's registry file's text (a regular file of at most 16 MB; it is the user's own, so not confined).</summary>
    string ReadUserRegistry() => Imaging.InputFile.ReadAllText(UserRegistryPath, "model registry", 16 << 20, confined: false);

    /// <summary>$REVERIE_CACHE, $XDG_CACHE_HOME/reverie or ~/.cache/reverie.</summary>
    public static string DefaultCacheDir() =>
        Environment.GetEnvironmentVariable("REVERIE_CACHE") is { Length: > 0 } c ? c :
        Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? Path.Combine(x, "reverie") :
        Path.Combine(Home(), ".cache", "reverie");

    /// <summary>$REVERIE_REGISTRY, $XDG_CONFIG_HOME/reverie/models.json or ~/.config/reverie/models.json.</summary>
    public static string DefaultUserRegistry() =>
        Environment.GetEnvironmentVariable("REVERIE_REGISTRY") is { Length: > 0 } r ? r :
        Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } x ? Path.Combine(x, "reverie", "models.json") :
        Path.Combine(Home(), ".config", "reverie", "models.json");

    /// <summary>All known models, by name.</summary>
    public IReadOnlyList<ModelEntry> Entries => _entries.Values.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();

    /// <summary>The entry for a name; unknown names raise <see cref="BadInputException"/> with the nearest names.</summary>
    public ModelEntry Get(string name)
    {
        if (_entries.TryGetValue(name, out var e)) return e;
        var near = NameSuggestions.Nearest(name, _entries.Keys, 3);
        throw new BadInputException($"Unknown model '{BadInputException.Shown(name)}'; known models: {string.Join(", ", near)} (see 'reverie models list').");
    }

    /// <summary>True when the name is a registered model.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    string ModelDir(ModelEntry e) => Path.Combine(CacheDir, "models", e.Name);

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> VerifiedPackaged = new();

    /// <summary>Checks a packaged file's SHA-256 against the registry's, once a process.</summary>
    static void VerifyPackaged(ModelEntry e, string path)
    {
        if (e.Sha256 is null || VerifiedPackaged.ContainsKey(path)) return;
        string hash = Downloader.Sha256Of(path);
        if (!string.Equals(hash, e.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new ReverieException($"The packaged file of '{e.Name}' ({path}) has SHA-256 {hash}, not the registry's {e.Sha256}; the package is damaged: clear it from the NuGet cache and build again.");
        VerifiedPackaged[path] = true;
    }

    /// <summary>
    /// A packaged model's file: beside Reverie's assembly (where the build copies it), else in the
    /// NuGet cache ($NUGET_PACKAGES or ~/.nuget/packages); null when neither has it.
    /// </summary>
    internal static string? PackagedPath(ModelEntry e)
    {
        if (e.File is null) return null;
        var roots = new List<string> { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(ModelRegistry).Assembly.Location) ?? AppContext.BaseDirectory };
        if (e.Package?.Split('/') is [var id, var version])
        {
            string nuget = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } n ? n : Path.Combine(Home(), ".nuget", "packages");
            roots.Add(Path.Combine(nuget, id.ToLowerInvariant(), version, "tools"));
        }
        foreach (var root in roots)
            if (ConfinedPath.Resolve(root, e.File) is { } f && File.Exists(f) && (e.Size is null || new FileInfo(f).Length == e.Size)) return f;
        return null;
    }
    /// <summary>Where the entry's weights live in the cache.</summary>
    public string WeightsPath(ModelEntry e) => e.IsPackaged && PackagedPath(e) is { } packaged ? packaged : Path.Combine(ModelDir(e), e.FileName);
    string RecordPath(ModelEntry e) => Path.Combine(ModelDir(e), "install.json");

    /// <summary>The install record of a cached model, or null.</summary>
    internal InstallRecord? Record(ModelEntry e)
    {
        if (!File.Exists(WeightsPath(e)) || !File.Exists(RecordPath(e))) return null;
        try { return JsonSerializer.Deserialize<InstallRecord>(File.ReadAllText(RecordPath(e)), Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>Whether a model is installed, and verified.</summary>
    public ModelStatus Status(ModelEntry e) => e.IsEmbedded ? ModelStatus.Embedded : e.IsPackaged ? (PackagedPath(e) is null ? ModelStatus.Missing : ModelStatus.Packaged) : Record(e) switch
    {
        null => ModelStatus.Missing,
        { Verified: true } => ModelStatus.Verified,
        _ => ModelStatus.Unverified,
    };

    /// <summary>Downloads a model's weights into the cache unless they are already there; returns the weights path.</summary>
    public async Task<string> PullAsync(string name, IProgress<DownloadProgress>? progress = null, bool force = false, CancellationToken cancel = default)
    {
        var e = Get(name);
        if (e.IsEmbedded) return $"embedded:{e.Name}";
        if (e.IsPackaged) return PackagedPath(e) ?? throw new ReverieException($"Model '{name}' comes with Reverie's build from the NuGet package {e.Package}, but its file {e.File} is neither beside Reverie ({AppContext.BaseDirectory}) nor in the NuGet cache; build Reverie again (the restore brings the package).");
        string path = WeightsPath(e);
        if (!force && Status(e) != ModelStatus.Missing) return path;
        if (e.Url is null) throw new BadInputException($"Model '{name}' has no download address; install its file with 'reverie models add {name} FILE'.");
        if (Offline) throw new ReverieException($"Model '{name}' is not in the cache ({CacheDir}) and --offline forbids downloading it; install it with 'reverie models add {name} FILE'.");
        bool existed = Directory.Exists(ModelDir(e));
        string hash;
        try { hash = await Downloader.DownloadAsync(e.Url, path, e.Sha256, e.Size, progress, cancel, e.Sha256Prefix); }
        catch when (!existed)
        {
            // A failed or interrupted pull leaves no empty model folder behind.
            try { if (Directory.Exists(ModelDir(e)) && !Directory.EnumerateFileSystemEntries(ModelDir(e)).Any()) Directory.Delete(ModelDir(e)); }
            catch (IOException) { }
            throw;
        }
        WriteRecord(e, new InstallRecord { Sha256 = hash, Verified = e.Sha256 is not null || e.Sha256Prefix is not null, Source = e.Url, InstalledAt = DateTime.UtcNow });
        return path;
    }

    void WriteRecord(ModelEntry e, InstallRecord r)
    {
        Directory.CreateDirectory(ModelDir(e));
        Imaging.AtomicFile.WriteAllText(RecordPath(e), JsonSerializer.Serialize(r, Json));
    }

    /// <summary>
    /// Installs a local file as a model's weights. For a known name the entry's input spec and labels are kept,
    /// and a file whose SHA-256 differs from the registry's is refused unless <paramref name="force"/>
    /// (it is then recorded as unverified). A new name registers the file with the given input spec.
    /// </summary>
    public ModelEntry Add(string name, string file, InputSpec? input = null, string? labelsFile = null, bool force = false)
    {
        if (!File.Exists(file)) throw new BadInputException($"Model file '{file}' does not exist.");
        if (!ModelEntry.IsPlainName(name))
            throw new BadInputException($"'{BadInputException.Shown(name)}' is not a usable model name (letters, digits, '-', '_' and '.' are, not starting with '.').");
        if (_entries.TryGetValue(name, out var builtIn) && (builtIn.IsEmbedded || builtIn.IsPackaged))
            throw new BadInputException($"'{name}' is a model that comes with Reverie ({builtIn.Format}), so a file cannot be installed under its name; choose another name.");
        input?.Check($"The input spec for '{name}'");
        if (labelsFile is not null) Labels.Load(labelsFile); // a missing or empty labels file is refused before anything is written
        // Parse it first: a corrupt or truncated file is refused before anything is installed.
        using (Onnx.OnnxGraph.Load(file)) { }
        string hash = Downloader.Sha256Of(file);
        bool known = _entries.TryGetValue(name, out var entry);
        bool verified;
        if (known)
        {
            verified = entry!.Sha256 is null || string.Equals(entry.Sha256, hash, StringComparison.OrdinalIgnoreCase);
            if (!verified && !force)
                throw new BadInputException($"'{file}' is not the registry's file for '{name}': its SHA-256 is {hash}, expected {entry.Sha256}; use --force to install it anyway as unverified.");
            if (input is not null || labelsFile is not null)
                entry = entry with { Input = input ?? entry.Input, Labels = labelsFile is null ? entry.Labels : "labels.txt" };
            if (input is not null || labelsFile is not null) SaveUserEntry(entry);
        }
        else
        {
            entry = new ModelEntry
            {
                Name = name, Description = $"added from {Path.GetFileName(file)}", Format = "onnx",
                File = Path.GetFileName(file).EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? Path.GetFileName(file) : name + ".onnx",
                Sha256 = hash, Size = new FileInfo(file).Length, Input = input ?? new InputSpec(),
                Labels = labelsFile is null ? null : "labels.txt",
            };
            verified = false;
            SaveUserEntry(entry);
        }
        string dir = ModelDir(entry);
        Directory.CreateDirectory(dir);
        if (labelsFile is not null)
        {
            Imaging.AtomicFile.WriteAllBytes(Path.Combine(dir, "labels.txt"), Imaging.InputFile.ReadAllBytes(labelsFile, "labels file", Labels.MaxFileBytes));
        }
        Imaging.AtomicFile.Write(WeightsPath(entry), s => { using var src = Imaging.InputFile.OpenRead(file, "weights file", MaxWeightsBytes); src.CopyTo(s); });
        WriteRecord(entry, new InstallRecord { Sha256 = hash, Verified = known && verified, Source = Path.GetFullPath(file), InstalledAt = DateTime.UtcNow });
        return entry;
    }

    void SaveUserEntry(ModelEntry entry)
    {
        var list = File.Exists(UserRegistryPath)
            ? ParseRegistry(ReadUserRegistry(), UserRegistryPath).Where(e => !e.Name.Equals(entry.Name, StringComparison.OrdinalIgnoreCase)).ToList()
            : new List<ModelEntry>();
        list.Add(entry);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(UserRegistryPath))!);
        Imaging.AtomicFile.WriteAllText(UserRegistryPath, JsonSerializer.Serialize(new RegistryFile(list), Json));
        _entries[entry.Name] = entry;
        _userNames.Add(entry.Name);
    }

    /// <summary>Removes a model's cached files; a model the user added is also removed from the user registry.</summary>
    public bool Remove(string name)
    {
        var e = Get(name);
        string dir = ModelDir(e);
        bool had = Directory.Exists(dir);
        if (had) Directory.Delete(dir, recursive: true);
        bool builtIn = ParseRegistry(Labels.ReadResource("models.json"), "built-in", trusted: true).Any(b => b.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
        if (_userNames.Contains(name) && !builtIn && File.Exists(UserRegistryPath))
        {
            var list = ParseRegistry(ReadUserRegistry(), UserRegistryPath).Where(x => !x.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).ToList();
            Imaging.AtomicFile.WriteAllText(UserRegistryPath, JsonSerializer.Serialize(new RegistryFile(list), Json));
            _entries.Remove(name);
            had = true;
        }
        return had;
    }

    /// <summary>The labels of an entry, or null.</summary>
    public IReadOnlyList<string>? LabelsOf(ModelEntry e) => e.Labels switch
    {
        null => null,
        "imagenet" => Labels.ImageNet,
        var f => Labels.Load(Path.Combine(ModelDir(e), f), confined: false), // a plain file name (ModelEntry.Check)
    };

    /// <summary>
    /// Opens a model by registry name (downloading it if needed and allowed; embedded models need nothing),
    /// or by path: a Reverie checkpoint (NAME.json), a torchvision state_dict (.pth, .safetensors) or an ONNX file.
    /// </summary>
    public async Task<INetwork> OpenAsync(string nameOrPath, IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default)
    {
        if (!_entries.ContainsKey(nameOrPath) && Training.Checkpoint.IsCheckpoint(nameOrPath))
            return Training.Checkpoint.Load(nameOrPath);
        if (!_entries.ContainsKey(nameOrPath) && IsWeightsFile(nameOrPath))
            return OpenWeights(nameOrPath);
        if (!_entries.ContainsKey(nameOrPath) && (nameOrPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || File.Exists(nameOrPath)))
            return OnnxNetwork.Load(nameOrPath);
        var e = Get(nameOrPath);
        if (e.IsEmbedded) return Training.Checkpoint.LoadEmbedded(e.Name);
        string path = await PullAsync(e.Name, progress, cancel: cancel);
        if (e.IsPackaged) VerifyPackaged(e, path);
        if (e.Format is "pth" or "safetensors") return OpenWeights(path, e.Name);
        return new OnnxNetwork(e.Name, Onnx.OnnxGraph.Load(path), e.Input, LabelsOf(e));
    }

    static bool IsWeightsFile(string path) =>
        new[] { ".pth", ".pt", ".safetensors" }.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A torchvision state_dict (.pth, .pt or .safetensors) as a native network; the architecture
    /// is recognised from the weights' names and shapes (VGG-16, VGG-19, AlexNet, ResNet-50, MobileNet-v2, GoogLeNet, Inception-v3).
    /// </summary>
    public static INetwork OpenWeights(string path, string? name = null)
    {
        var weights = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? Torch.SafeTensors.Load(path) : Torch.TorchFile.Load(path);
        try
        {
            name ??= Path.GetFileNameWithoutExtension(path);
            Native.NativeNetwork? net =
                weights.ContainsKey("features.0.weight") && weights.ContainsKey("classifier.6.weight") && weights["features.0.weight"].shape[^1] == 11 ? Native.Vgg.AlexNet(name)
                : weights.ContainsKey("features.0.weight") && weights.ContainsKey("classifier.6.weight") ? Native.Vgg.Create(Native.Vgg.DepthOf(weights), name)
                : weights.ContainsKey("layer4.2.conv3.weight") && weights.ContainsKey("fc.weight") ? Native.ResNet.ResNet50(name)
                : weights.ContainsKey("features.18.0.weight") && weights.ContainsKey("classifier.1.weight") ? Native.MobileNetV2.Create(name)
                : Native.GoogLeNet.Matches(weights) ? Native.GoogLeNet.Create(name)
                : Native.InceptionV3.Matches(weights) ? Native.InceptionV3.Create(name)
                : null;
            if (net is null)
                throw new BadInputException($"'{path}' holds weights of an architecture Reverie does not build natively yet (it knows torchvision's VGG-16, VGG-19, AlexNet, ResNet-50, MobileNet-v2, GoogLeNet and Inception-v3); export the model to ONNX instead.");
            try { net.LoadWeights(weights); }
            catch { net.Dispose(); throw; }
            // A network opened to be looked at, as imported graphs are: its weights take no gradient, so that
            // every step's backward pass computes the image's gradient only (VGG-19's weight gradients alone
            // are 550 MB a step, and a backward pass as long again).
            foreach (var p in net.parameters()) p.requires_grad_(false);
            return net;
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }
}
