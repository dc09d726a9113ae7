using Reverie.Dreaming;

namespace Reverie.Cli.Commands.Dream;

/// <summary><c>reverie dream IMAGE [-o OUT]</c>: DeepDream with octaves, jitter, guide images, tiles and zoom animations.</summary>
internal static class DreamCommand
{
    public static Command Create()
    {
        var d = new DreamOptions();
        var common = new CommonOptions(modelDefault: null, seedMeaning: "the random jitter",
            modelHelp: "Model: a registry name, checkpoint, weights or .onnx file. Default: googlenet when cached or downloadable, else the packaged ImageNet network resnet18 (the embedded textures model only if that is missing).");
        var image = new Argument<string>("image") { Description = "The photo to dream on, or a video (.mp4, .mov, .mkv, .webm ...) to dream frame by frame." };
        var output = CommonOptions.Output("Output file (.png or .jpg; .gif or .mp4 with --zoom; .mp4 for a video). Default: IMAGE-dream.png (VIDEO-dream.mp4).", required: false);
        var video = new CommonOptions.VideoFlags();
        var fromPrevious = new Option<bool>("--dream-from-previous") { Description = "For a video: dream each frame from itself blended with the previous dream, so that the hallucinations grow from frame to frame (they then also change where nothing moves)." };
        var layers = new Option<string[]>("--layer", "-l") { Description = "Layer to amplify: NAME, NAME*WEIGHT or l2(NAME:CHANNELS) (DeepDream's L2 of some channels); repeatable, summed (default: inception_4c/output, or the model's own dream layer).", AllowMultipleArgumentsPerToken = false };
        var objective = new Option<string?>("--objective", "-O") { Description = "An objective in Reverie's objective language, added to the layers (e.g. \"inception_4c/output + 5*class:espresso\"); LAYER:C is channel C's mean." };
        var octaves = new Option<int>("--octaves") { Description = "Octaves of the image pyramid.", DefaultValueFactory = _ => d.Octaves };
        var octaveScale = new Option<double>("--octave-scale") { Description = "Scale between octaves.", DefaultValueFactory = _ => d.OctaveScale };
        var steps = new Option<int>("--steps") { Description = "Gradient steps per octave.", DefaultValueFactory = _ => d.Steps };
        var stepSize = new Option<double>("--step-size") { Description = "Step size in 0..255 pixel units (the notebook's).", DefaultValueFactory = _ => d.StepSize };
        var jitter = new Option<int>("--jitter") { Description = "Largest random roll in pixels.", DefaultValueFactory = _ => d.Jitter };
        var tile = new Option<string>("--tile") { Description = $"Tile size for the gradient: auto (tiles of {DreamOptions.AutoTileSize} px only for photos over {DreamOptions.AutoTilePixels / 1e6:0.#} megapixels), 0 (never) or PX (always).", DefaultValueFactory = _ => "auto" };
        var guide = new Option<string?>("--guide") { Description = "Guide image: dream toward its features at the (first) layer." };
        var nodesOf = new Option<string?>("--nodes-of") { Description = "Amplify only the channels of the (first) layer that this image activates most, in any photo." };
        var nodesTop = new Option<int>("--top") { Description = "How many channels --nodes-of picks.", DefaultValueFactory = _ => 8 };
        var smooth = new Option<double>("--smooth") { Description = "Gaussian smoothing of the gradient (sigma in pixels at the first octave, shrinking per octave)." };
        var keepColors = new Option<bool>("--keep-colors") { Description = "Keep the photo's colours; transfer only luminance (YCbCr)." };
        var maxSize = new Option<int?>("--max-size") { Description = "Shrink the photo first so that its longer side is at most PX." };
        var snapshots = new Option<string?>("--snapshots") { Description = "Folder to save the image after each octave." };
        var zoom = new Option<int>("--zoom") { Description = "Make an animation of FRAMES frames, each the dream of the previous one zoomed in." };
        var zoomScale = new Option<double>("--zoom-scale") { Description = "Zoom per frame (fraction cropped).", DefaultValueFactory = _ => 0.05 };
        var zoomRotate = new Option<double>("--zoom-rotate") { Description = "Rotation per frame in degrees." };

        var cmd = new Command("dream", "DeepDream: amplify what a layer of the network detects in a photo.")
        { image, output, layers, objective, octaves, octaveScale, steps, stepSize, jitter, tile, guide, nodesOf, nodesTop, smooth, keepColors, maxSize, snapshots, zoom, zoomScale, zoomRotate };
        common.AddTo(cmd);
        foreach (var o in video.All) cmd.Options.Add(o);
        cmd.Options.Add(fromPrevious);

        cmd.SetAction(async inv =>
        {
            var p = inv.Parse;
            var options = common.Apply(p, new DreamJobOptions
            {
                Input = CommonOptions.InputFile(p.GetValue(image)!, "photo"),
                Layers = p.GetValue(layers) ?? [],
                Objective = p.GetValue(objective),
                Guide = p.GetValue(guide) is { } g ? CommonOptions.InputFile(g, "guide image") : null,
                NodesOf = p.GetValue(nodesOf) is { } n ? CommonOptions.InputFile(n, "--nodes-of image") : null,
                NodesTop = p.GetValue(nodesTop),
                MaxSize = p.GetValue(maxSize),
                Zoom = p.GetValue(zoom),
                ZoomScale = p.GetValue(zoomScale),
                ZoomRotate = p.GetValue(zoomRotate),
                Video = video.Parse(p) with { DreamFromPrevious = p.GetValue(fromPrevious) },
                Dream = new DreamOptions
                {
                    Octaves = p.GetValue(octaves), OctaveScale = p.GetValue(octaveScale), Steps = p.GetValue(steps),
                    StepSize = p.GetValue(stepSize), Jitter = p.GetValue(jitter), Tile = ParseTile(p.GetValue(tile)!),
                    Smooth = p.GetValue(smooth), KeepColors = p.GetValue(keepColors),
                },
            });
            string outPath = p.GetValue(output) ?? DreamJob.DefaultOutput(options with { Input = p.GetValue(image)! });
            return await CliRun.RunJob(inv, new DreamJob(), options, outPath, snapshots: p.GetValue(snapshots));
        });
        return cmd;
    }

    static int? ParseTile(string text) => text == "auto" ? null
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int t) ? t
        : throw new BadInputException($"--tile must be auto, 0 or a size in pixels; got '{BadInputException.Shown(text)}'.");
}
