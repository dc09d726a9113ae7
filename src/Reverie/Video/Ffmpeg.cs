using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Reverie.Video;

/// <summary>What ffprobe says of a video file.</summary>
/// <param name="Width">Width of the picture as shown (after any rotation).</param>
/// <param name="Height">Height as shown.</param>
/// <param name="FrameRate">The frame rate as ffmpeg writes it (<c>30000/1001</c>).</param>
/// <param name="Frames">Frames in the video stream (packets counted; 0 when unknown).</param>
/// <param name="HasAudio">Whether there is an audio stream.</param>
internal sealed record VideoInfo(int Width, int Height, string FrameRate, int Frames, bool HasAudio)
{
    /// <summary>The frame rate as a number.</summary>
    public double Fps
    {
        get
        {
            var parts = FrameRate.Split('/');
            double num = double.Parse(parts[0], CultureInfo.InvariantCulture), den = parts.Length > 1 ? double.Parse(parts[1], CultureInfo.InvariantCulture) : 1;
            return den > 0 ? num / den : 0;
        }
    }
}

/// <summary>Debian's ffmpeg and ffprobe: video in (probe, decode to RGB frames) and out (MP4 from frames, audio kept).</summary>
internal static class Ffmpeg
{
    const string Missing = "needs ffmpeg, which is not installed (Debian: apt-get install ffmpeg)";

    /// <summary>Whether an <c>ffmpeg</c> (and its <c>ffprobe</c>) is on the PATH.</summary>
    public static bool Available => OnPath("ffmpeg") && OnPath("ffprobe");

    static bool OnPath(string tool) => Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool))) ?? false;

    /// <summary>File name endings read as videos rather than images.</summary>
    public static readonly IReadOnlySet<string> VideoExtensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        { ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv", ".ts" };

    /// <summary>Whether <paramref name="path"/> names a video (by its ending).</summary>
    public static bool IsVideo(string path) => VideoExtensions.Contains(Path.GetExtension(path));

    /// <summary>Probes a video; a file ffprobe cannot read, or one without a video stream, is one sentence.</summary>
    public static VideoInfo Probe(string path, string what = "video")
    {
        if (!Available) throw new BadInputException($"Reading the {what} '{BadInputException.Shown(path)}' {Missing}.");
        if (!File.Exists(path)) throw new BadInputException($"The {what} '{BadInputException.Shown(path)}' does not exist.");
        var (code, stdout, stderr) = Run("ffprobe", ["-v", "error", "-count_packets", "-show_entries",
            "stream=codec_type,width,height,r_frame_rate,nb_read_packets:stream_side_data=rotation", "-of", "json", path]);
        if (code != 0) throw new BadInputException($"'{BadInputException.Shown(path)}' is not a {what} ffmpeg can read ({BadInputException.Shown(FirstLine(stderr), 120)}).");
        using var doc = JsonDocument.Parse(stdout);
        var streams = doc.RootElement.TryGetProperty("streams", out var s) ? s.EnumerateArray().ToList() : [];
        var video = streams.FirstOrDefault(x => Str(x, "codec_type") == "video");
        if (video.ValueKind != JsonValueKind.Object || !video.TryGetProperty("width", out var w) || w.GetInt32() <= 0)
            throw new BadInputException($"'{BadInputException.Shown(path)}' has no video stream.");
        int width = w.GetInt32(), height = video.GetProperty("height").GetInt32();
        if (video.TryGetProperty("side_data_list", out var sides))
            foreach (var side in sides.EnumerateArray())
                if (side.TryGetProperty("rotation", out var r) && Math.Abs(r.GetInt32()) % 180 == 90) (width, height) = (height, width);
        string rate = Str(video, "r_frame_rate") ?? "0/0";
        if (rate is "0/0" or "0/1") throw new BadInputException($"'{BadInputException.Shown(path)}' gives no frame rate.");
        int frames = int.TryParse(Str(video, "nb_read_packets"), out int n) ? n : 0;
        return new VideoInfo(width, height, rate, frames, streams.Any(x => Str(x, "codec_type") == "audio"));
    }

    static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.ToString() : null;

    static string FirstLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "no message";

    /// <summary>
    /// The video's frames, decoded and scaled to <paramref name="width"/>×<paramref name="height"/>, as
    /// packed RGB bytes, one array per frame in order (every frame kept: no frame-rate conversion).
    /// </summary>
    public static IEnumerable<byte[]> ReadFrames(string path, int width, int height, CancellationToken cancel = default)
    {
        var psi = Start("ffmpeg", ["-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough",
            "-vf", $"scale={width}:{height}:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        using var proc = Process.Start(psi)!;
        var errTask = proc.StandardError.ReadToEndAsync();
        var stream = proc.StandardOutput.BaseStream;
        int size = width * height * 3;
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                var frame = new byte[size];
                int got = 0;
                while (got < size)
                {
                    int r = stream.Read(frame, got, size - got);
                    if (r == 0) break;
                    got += r;
                }
                if (got < size) break;
                yield return frame;
            }
        }
        finally
        {
            if (!proc.HasExited) try { proc.Kill(); } catch (InvalidOperationException) { }
            proc.WaitForExit();
        }
        if (!cancel.IsCancellationRequested && proc.ExitCode != 0)
            throw new BadInputException($"ffmpeg could not decode '{BadInputException.Shown(path)}' ({BadInputException.Shown(FirstLine(errTask.Result), 120)}).");
    }

    /// <summary>
    /// Encodes the numbered PNGs <paramref name="pattern"/> (<c>DIR/%06d.png</c>) as H.264 MP4 at
    /// <paramref name="frameRate"/>, with the audio of <paramref name="audioFrom"/> when it has some,
    /// through a temporary file renamed at the end. Bit-exact flags make the same frames give the same file.
    /// </summary>
    public static void WriteMp4(string pattern, string frameRate, string path, string? audioFrom)
    {
        if (!Available) throw new BadInputException($"MP4 output {Missing}.");
        string tmp = TempBeside(path);
        List<string> args = ["-y", "-v", "error", "-nostdin", "-framerate", frameRate, "-i", pattern];
        if (audioFrom is not null) args.AddRange(["-i", audioFrom, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "160k", "-flags:a", "+bitexact"]);
        args.AddRange(["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-flags:v", "+bitexact", "-fflags", "+bitexact", "-map_metadata", "-1", "-f", "mp4", tmp]);
        Encode(args, path, tmp, null);
    }

    /// <summary>Encodes RGBA frames of one size as H.264 MP4 at <paramref name="fps"/>, through a temporary file renamed at the end.</summary>
    public static void WriteMp4(IReadOnlyList<byte[]> rgbaFrames, int width, int height, string path, int fps = 12)
    {
        if (!Available) throw new BadInputException($"MP4 output {Missing}; write a .gif instead.");
        string tmp = TempBeside(path);
        Encode(["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", $"{width}x{height}", "-r", fps.ToString(CultureInfo.InvariantCulture), "-i", "-",
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-f", "mp4", tmp], path, tmp, rgbaFrames);
    }

    static string TempBeside(string path) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");

    static void Encode(List<string> args, string path, string tmp, IReadOnlyList<byte[]>? input)
    {
        try
        {
            var psi = Start("ffmpeg", args);
            psi.RedirectStandardInput = true;
            using var proc = Process.Start(psi)!;
            var errTask = proc.StandardError.ReadToEndAsync();
            var outTask = proc.StandardOutput.ReadToEndAsync();
            if (input is not null) foreach (var f in input) proc.StandardInput.BaseStream.Write(f);
            proc.StandardInput.Close();
            proc.WaitForExit();
            if (proc.ExitCode != 0) throw new ReverieException($"ffmpeg failed to write '{path}': {FirstLine(errTask.Result)}");
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    static ProcessStartInfo Start(string tool, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    static (int Code, string Stdout, string Stderr) Run(string tool, IEnumerable<string> args)
    {
        using var proc = Process.Start(Start(tool, args))!;
        var err = proc.StandardError.ReadToEndAsync();
        string stdout = proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        return (proc.ExitCode, stdout, err.Result);
    }
}
