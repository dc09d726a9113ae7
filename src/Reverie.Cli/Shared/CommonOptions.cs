namespace Reverie.Cli;

/// <summary>
/// The options every command shares, defined once: each command asks for the ones it takes, and
/// <see cref="Apply"/> copies their values into the command's options record.
/// </summary>
internal sealed class CommonOptions
{
    public Option<string?> Model { get; }
    public Option<int> Seed { get; }
    public Option<string> Precision { get; }
    public Option<string> Device { get; }

    /// <param name="modelDefault">The model used without --model, named in the help; null says the command's own default.</param>
    /// <param name="seedMeaning">What the seed seeds, for the help.</param>
    public CommonOptions(string? modelDefault = "googlenet", string seedMeaning = "every random choice", string? modelHelp = null)
    {
        Model = new Option<string?>("--model", "-m")
        {
            Description = modelHelp ?? $"Model: a registry name, checkpoint, weights or .onnx file (default: {modelDefault ?? "see the command's help"}).",
        };
        Seed = SeedOption(seedMeaning);
        Precision = new Option<string>("--precision") { Description = "fp32, or bf16 to run the network in bfloat16 (faster on CPUs with AVX-512 BF16; the image stays fp32).", DefaultValueFactory = _ => "fp32" };
        Device = new Option<string>("--device") { Description = "cpu or cuda (cuda needs the CUDA build of TorchSharp).", DefaultValueFactory = _ => "cpu" };
        ModelDefault = modelDefault;
    }

    /// <summary>--seed, for commands that take no other common option.</summary>
    public static Option<int> SeedOption(string meaning, int defaultValue = 0) =>
        new("--seed") { Description = $"Seed of {meaning}.", DefaultValueFactory = _ => defaultValue };

    /// <summary>--model, for commands that take no other common option: required when there is no default.</summary>
    public static Option<string> ModelOption(string what, string? defaultModel = "googlenet")
    {
        var o = new Option<string>("--model", "-m") { Description = $"{what}: a registry name, checkpoint NAME.json, weights (.pth, .safetensors) or .onnx file{(defaultModel is null ? "" : $" (default: {defaultModel})")}." };
        if (defaultModel is null) o.Required = true;
        else o.DefaultValueFactory = _ => defaultModel;
        return o;
    }

    /// <summary>--limit, images per class of a data set: a whole number from 1, or absent for all.</summary>
    public static Option<int?> Limit(string description)
    {
        var o = new Option<int?>("--limit") { Description = description + " (default: all)." };
        o.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1 and var v) r.AddError($"--limit must be at least 1 image per class; got {v}.");
        });
        return o;
    }

    /// <summary>--flow and --blend, for the commands that take a video: how each output frame is carried into the next.</summary>
    public sealed class VideoFlags
    {
        readonly Video.VideoOptions _d = new();
        public Option<string> Flow { get; }
        public Option<double> Blend { get; }

        public VideoFlags()
        {
            Flow = new Option<string>("--flow") { Description = "For a video: the optical flow that carries the previous output into the next frame (occlusions left out): sparse-to-dense, farneback (faster, wrong on flat areas), or none (every frame on its own).", DefaultValueFactory = _ => "sparse-to-dense" };
            Blend = new Option<double>("--blend") { Description = "For a video: how much of the warped previous output a frame keeps where the flow is consistent, 0..1.", DefaultValueFactory = _ => _d.Blend };
        }

        public IEnumerable<Option> All => [Flow, Blend];

        /// <summary>The video options given on the command line.</summary>
        public Video.VideoOptions Parse(ParseResult p) => new()
        {
            Flow = p.GetValue(Flow)!,
            Blend = p.GetValue(Blend),
        };
    }

    /// <summary>The model a command uses when --model is not given (null: the job chooses).</summary>
    public string? ModelDefault { get; }

    /// <summary>
    /// --force, shared by every command that writes an image: replace an existing output that
    /// Reverie did not write (never one of the run's inputs).
    /// </summary>
    public static readonly Option<bool> Force = new("--force") { Description = "Replace an existing output file that Reverie did not write (an input of the run is never replaced)." };

    /// <summary>The four, and --force, to add to a command.</summary>
    public IEnumerable<Option> All => [Model, Seed, Precision, Device, Force];

    /// <summary>A data set as a job records it: a folder as its full path, a named set (fashion-mnist, textures) as it is.</summary>
    public static string DataSource(string source) => Directory.Exists(source) ? Path.GetFullPath(source) : source;

    /// <summary>The output option, required or with a default named in the help.</summary>
    public static Option<string?> Output(string description, bool required = true) =>
        new("--output", "-o") { Description = description, Required = required };

    /// <summary>Adds the common options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in All)
            if (!command.Options.Contains(o)) command.Options.Add(o); // a command that names --force itself lists it once
    }

    /// <summary>Parses --precision.</summary>
    public static Precision ParsePrecision(string text) => text switch
    {
        "fp32" => Jobs.Precision.Fp32,
        "bf16" => Jobs.Precision.Bf16,
        _ => throw new BadInputException($"--precision must be fp32 or bf16; got '{BadInputException.Shown(text)}'."),
    };

    /// <summary>The record with the common options' values.</summary>
    public T Apply<T>(ParseResult p, T options) where T : JobOptions => options with
    {
        // A model file is recorded by its absolute path, so that a recipe replays from any folder.
        Model = p.GetValue(Model) is { } m ? ModelName(m) : ModelDefault,
        Seed = p.GetValue(Seed),
        Precision = ParsePrecision(p.GetValue(Precision)!),
        Device = p.GetValue(Device)!,
    };

    /// <summary>A model as recipes hold it: a registry name as given, a file by its absolute path (so that a recipe replays from any folder).</summary>
    public static string ModelName(string model) => File.Exists(model) ? Path.GetFullPath(model) : model;

    /// <summary>An input file's absolute path, as recipes hold it; a missing file is one sentence.</summary>
    public static string InputFile(string path, string what = "input")
    {
        if (!File.Exists(path)) throw new BadInputException($"The {what} '{BadInputException.Shown(path)}' does not exist.");
        // A device or pipe (/dev/zero) reports no length and never ends: refused like an empty file.
        if (new FileInfo(path).Length == 0) throw new BadInputException($"The {what} '{BadInputException.Shown(path)}' is empty or not a regular file.");
        return Path.GetFullPath(path);
    }
}
