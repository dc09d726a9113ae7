using System.Diagnostics;

namespace Reverie.Video;

/// <summary>Debian's ffmpeg, for MP4 output.</summary>
internal static class Ffmpeg
{
    /// <summary>Whether an <c>ffmpeg</c> is on the PATH.</summary>
    public static bool Available => Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(d => File.Exists(Path.Combine(d, "ffmpeg"))) ?? false;

    /// <summary>Encodes RGBA frames of one size as H.264 MP4 at <paramref name="fps"/>, through a temporary file renamed at the end.</summary>
    public static void WriteMp4(IReadOnlyList<byte[]> rgbaFrames, int width, int height, string path, int fps = 12)
    {
        if (!Available) throw new BadInputException("MP4 output needs ffmpeg, which is not installed (Debian: apt-get install ffmpeg); write a .gif instead.");
        string tmp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.mp4");
        var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", $"{width}x{height}", "-r", fps.ToString(System.Globalization.CultureInfo.InvariantCulture), "-i", "-",
                     "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", "libx264", tmp })
            psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        var errTask = proc.StandardError.ReadToEndAsync();
        foreach (var f in rgbaFrames) proc.StandardInput.BaseStream.Write(f);
        proc.StandardInput.Close();
        proc.WaitForExit();
        if (proc.ExitCode != 0)
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            throw new ReverieException($"ffmpeg failed to write '{path}': {errTask.Result.Split('\n')[0]}");
        }
        File.Move(tmp, path, overwrite: true);
    }
}
