using Reverie.Imaging;
using Reverie.Models;
using Reverie.Models.Registry;
using Reverie.Optimization;
using Reverie.Recipes;
using static TorchSharp.torch;

namespace Reverie.Jobs;

/// <summary>
/// What a running job is given: where its main output goes, cancellation, the sink of its events
/// (with a preview image every <see cref="PreviewEvery"/> steps), the model registry, and its recipe,
/// which it writes into every output.
/// </summary>
public sealed class JobContext
{
    /// <summary>The main output file.</summary>
    public required string Output { get; init; }
    /// <summary>The recipe of this run (the options record serialized, the inputs' hashes).</summary>
    public required Recipe Recipe { get; init; }
    /// <summary>Cancellation: the job stops at the next step and saves what it has.</summary>
    public CancellationToken Cancel { get; init; }
    /// <summary>Where events go.</summary>
    public IProgress<JobEvent>? Events { get; init; }
    /// <summary>Attach a preview image to a progress event every N steps (and at each stage's end); 0 for none.</summary>
    public int PreviewEvery { get; init; }
    /// <summary>A folder for intermediate images (a dream's octaves), or null; like <see cref="Output"/>, never part of the recipe.</summary>
    public string? Snapshots { get; init; }
    /// <summary>Where models come from.</summary>
    public ModelRegistry Registry { get; init; } = new();
    /// <summary>Replace an existing output even when Reverie did not write it (never an input of the run).</summary>
    public bool Force { get; init; }

    /// <summary>The run's input files, set when the job starts: no output may replace one.</summary>
    internal IReadOnlyList<string> Inputs { get; set; } = [];

    /// <summary>Checks an output path against the output policy (<see cref="OutputFiles"/>).</summary>
    internal void CheckOutput(string path, bool sidecar = true) =>
        OutputFiles.Check(path, Inputs, Force, sidecar, Output is { Length: > 0 } o ? OutputFiles.SidecarOf(o) : null);

    /// <summary>Reports an event.</summary>
    public void Report(JobEvent e) => Events?.Report(e);

    /// <summary>A one-line notice for the user.</summary>
    public void Note(string message) => Report(new JobEvent { Kind = JobEventKind.Note, Message = message });

    /// <summary>
    /// An optimization's steps as job progress: <paramref name="offset"/> steps were done before it in a
    /// job of <paramref name="total"/>, and <paramref name="stage"/> names where it is.
    /// </summary>
    /// <remarks>
    /// With <see cref="Snapshots"/> set, <paramref name="snapshot"/> names the file saved there at the
    /// end of each stage but the last (null: none).
    /// </remarks>
    public IProgress<OptimizationStep> Steps(long offset, long total, Func<OptimizationStep, string> stage, Func<OptimizationStep, string?>? snapshot = null) =>
        new StepProgress(this, offset, total, stage, snapshot);

    sealed class StepProgress(JobContext c, long offset, long total, Func<OptimizationStep, string> stage, Func<OptimizationStep, string?>? snapshot) : IProgress<OptimizationStep>
    {
        public void Report(OptimizationStep s)
        {
            bool stageEnd = s.Step == s.Steps;
            bool hasImage = !ReferenceEquals(s.Image, OptimizationStep.NoImage);
            string? snap = hasImage && c.Snapshots is not null && stageEnd && s.Stage < s.Stages - 1 ? snapshot?.Invoke(s) : null;
            bool withPreview = hasImage && c.Events is not null && c.PreviewEvery > 0 && (s.Done % c.PreviewEvery == 0 || stageEnd);
            if (c.Events is null && snap is null) return;
            using var scope = withPreview || snap is not null ? NewDisposeScope() : null;
            Tensor? image = null;
            if (withPreview || snap is not null) using (no_grad()) image = s.Image();
            if (snap is not null) c.SaveExtra(image!, Path.Combine(c.Snapshots!, snap));
            c.Events?.Report(new JobEvent { Stage = stage(s), Step = offset + s.Done, Total = total, Value = s.Value, Terms = s.Terms, Preview = withPreview ? image : null });
        }
    }

    /// <summary>Opens models through <see cref="Registry"/>, reporting downloads as events.</summary>
    public ModelOpener Models => new(Registry, Events, Cancel);

    /// <summary>The job's device, checked when the job starts (<see cref="JobOptions.CheckRuntime"/>); every model a job opens is put there.</summary>
    internal Device Device { get; set; } = CPU;

    /// <summary>Opens a model by name or file, downloading it first when the registry knows where from, on the job's device.</summary>
    public async Task<INetwork> OpenModelAsync(string name) => OnDevice(await Models.OpenAsync(name));

    /// <summary>The model a dream uses when none is named (see <see cref="ModelOpener.OpenDreamDefaultAsync"/>), on the job's device.</summary>
    public async Task<INetwork> OpenDreamDefaultAsync() => OnDevice(await Models.OpenDreamDefaultAsync());

    INetwork OnDevice(INetwork net)
    {
        if (Device.type != TorchSharp.DeviceType.CPU) net.To(Device);
        return net;
    }

    /// <summary>
    /// Writes an image with this run's recipe (PNG chunk, and JSON beside it), atomically; the
    /// recipe records the steps done, whether the run was interrupted, and the job's results.
    /// </summary>
    public Recipe Save(Tensor image, string path, object? results = null, int? steps = null, bool interrupted = false)
    {
        var recipe = Finished(results, steps, interrupted);
        if (interrupted && steps == 0) { NothingSaved = true; return recipe; } // stopped before the first step: nothing to keep
        CheckOutput(path);
        recipe.SaveWithImage(image, path);
        return recipe;
    }

    /// <summary>
    /// Writes a file that is not an image (a trained network, a checkpoint, a report) atomically,
    /// with this run's recipe beside it (OUT.recipe.json), under the same output policy as images.
    /// </summary>
    public Recipe SaveFile(byte[] contents, string path, object? results = null, int? steps = null, bool interrupted = false)
    {
        var recipe = Finished(results, steps, interrupted);
        if (interrupted && steps == 0) { NothingSaved = true; return recipe; }
        CheckOutput(path);
        AtomicFile.WriteAllBytes(path, contents);
        recipe.SaveBeside(path);
        return recipe;
    }

    /// <summary>A further file of the run that is not an image (a raw map), atomically, under the output policy; the main output's recipe describes it.</summary>
    internal void SaveExtraFile(byte[] contents, string path)
    {
        if (NothingSaved) return;
        CheckOutput(path, sidecar: false);
        AtomicFile.WriteAllBytes(path, contents);
        if (Output is { Length: > 0 } o) OutputFiles.Record(OutputFiles.SidecarOf(o), path);
    }

    /// <summary>A further PNG of the run that is not a tensor (a plot), with the run's recipe in its chunk, under the output policy.</summary>
    internal void SaveExtraPng(byte[] png, string path)
    {
        if (NothingSaved) return;
        SaveExtraFile(Recipes.PngText.Insert(png, Recipe.Keyword, Finished().ToJson()), path);
    }

    /// <summary>
    /// Writes a further image of the run (a perturbation, a snapshot) under the same policy: a PNG
    /// carries the recipe in its chunk (no sidecar), other formats get one.
    /// </summary>
    public void SaveExtra(Tensor image, string path)
    {
        if (NothingSaved) return;
        bool png = ImageIO.FormatFor(path) == SkiaSharp.SKEncodedImageFormat.Png;
        CheckOutput(path, sidecar: !png);
        Finished().SaveWithImage(image, path, sidecar: !png);
    }

    /// <summary>Whether the run was interrupted before its first step, so that nothing was written.</summary>
    internal bool NothingSaved { get; private set; }

    System.Text.Json.Nodes.JsonObject? _resolved;

    /// <summary>
    /// Records the options as they were resolved while running (the model a default chose), so that
    /// the recipe written with the outputs replays the same run anywhere.
    /// </summary>
    public void Resolved(JobOptions options) =>
        _resolved = (System.Text.Json.Nodes.JsonObject)System.Text.Json.JsonSerializer.SerializeToNode(options, options.GetType(), Recipe.JsonOptions)!;

    /// <summary>The recipe completed with results, steps and the interruption mark.</summary>
    public Recipe Finished(object? results = null, int? steps = null, bool interrupted = false) => Recipe with
    {
        Options = _resolved ?? Recipe.Options,
        Results = results is null ? null : System.Text.Json.JsonSerializer.SerializeToNode(results, results.GetType(), Recipe.JsonOptions)?.AsObject(),
        Steps = steps,
        Interrupted = interrupted,
    };

    /// <summary>The path of a file beside the main output: OUT-suffix.ext.</summary>
    public string Beside(string suffix, string? extension = null) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Output))!, Path.GetFileNameWithoutExtension(Output) + suffix + (extension ?? Path.GetExtension(Output)));

    /// <summary>Checks that the main output has an image format Reverie writes.</summary>
    public void CheckImageOutput() => ImageIO.FormatFor(Output);
}
