using System.Runtime.InteropServices;
using System.Text;

namespace Reverie.Imaging;

/// <summary>
/// The one reader for a file whose path came from outside: a user, a recipe, a manifest or a
/// request. It reads regular files only (a device, a named pipe, a socket or a folder is refused
/// before it is opened, so that /dev/zero cannot fill the memory and a pipe cannot stall a job),
/// reads at most a stated number of bytes (a file that grows, or one in /proc whose size says 0,
/// is cut off there and refused), resolves links before it decides, and, where a run is confined
/// (the studio's jobs: <see cref="RootsVariable"/>), refuses a path whose real location lies outside
/// the allowed folders, whether or not the file exists, so that nothing outside can be read or
/// even probed for.
/// </summary>
/// <remarks>
/// What is confined: every path a recipe or request names (images are checked by the studio at
/// submit, direction files, labels, recipes, manifests, training states). What is not: a model's
/// own files (weights, checkpoints, architectures, an installed model's labels), which live in the
/// model cache and are reached by a model name that the studio has checked; they still pass the
/// regular-file and size checks.
/// </remarks>
internal static class InputFile
{
    /// <summary>
    /// The environment variable that confines a process's reads of paths from outside to folders
    /// (separated by ':'); the studio sets it for the jobs it runs. Unset: any readable path.
    /// </summary>
    public const string RootsVariable = "REVERIE_READ_ROOTS";

    static readonly AsyncLocal<string[]?> ScopedRoots = new();

    /// <summary>The folders reads are confined to (each ending in '/'), or null when they are not confined.</summary>
    public static IReadOnlyList<string>? Roots =>
        ScopedRoots.Value ?? (Environment.GetEnvironmentVariable(RootsVariable) is { Length: > 0 } v ? Normalize(v.Split(':', StringSplitOptions.RemoveEmptyEntries)) : null);

    /// <summary>Confines the reads of this thread of work (and the tasks it starts) to <paramref name="roots"/> until disposed.</summary>
    public static IDisposable Confine(IEnumerable<string> roots)
    {
        var previous = ScopedRoots.Value;
        ScopedRoots.Value = Normalize(roots);
        return new Restore(() => ScopedRoots.Value = previous);
    }

    /// <summary>The whole file as bytes; <paramref name="what"/> names it in messages ("direction file").</summary>
    public static byte[] ReadAllBytes(string path, string what, long maxBytes, bool confined = true)
    {
        using var s = OpenRead(path, what, maxBytes, confined);
        var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = s.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > maxBytes) throw TooLarge(path, what, maxBytes);
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>The whole file as UTF-8 text (see <see cref="ReadAllBytes"/>).</summary>
    public static string ReadAllText(string path, string what, long maxBytes, bool confined = true) =>
        new UTF8Encoding(false).GetString(ReadAllBytes(path, what, maxBytes, confined)).TrimStart('\uFEFF');

    /// <summary>
    /// Opens the file for reading after the checks (regular file, at most <paramref name="maxBytes"/>
    /// as it stands, inside the roots when <paramref name="confined"/>). A caller that streams it
    /// must still stop at <paramref name="maxBytes"/>; <see cref="ReadAllBytes"/> does.
    /// </summary>
    public static FileStream OpenRead(string path, string what, long maxBytes, bool confined = true)
    {
        string real = Check(path, what, maxBytes, confined);
        try { return new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"{Capital(what)} '{BadInputException.Shown(path)}' cannot be read: {BadInputException.Shown(e.Message, 120)}", e);
        }
    }

    /// <summary>
    /// The file's SHA-256 (lower-case hex), read through the same checks: a device or a named pipe
    /// would be read for ever or block, and a missing file gets its sentence. No size limit: inputs
    /// and weights of any size are hashed as they stream.
    /// </summary>
    public static string Sha256(string path, string what, bool confined = true)
    {
        using var s = OpenRead(path, what, long.MaxValue, confined);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(s));
    }

    /// <summary>
    /// The checks alone: returns the file's real path (links resolved), or throws a
    /// <see cref="BadInputException"/> saying in one sentence what is wrong.
    /// </summary>
    public static string Check(string path, string what, long maxBytes, bool confined = true)
    {
        if (string.IsNullOrEmpty(path)) throw new BadInputException($"{Capital(what)} is not named (an empty path).");
        if (path.Contains('\0')) throw new BadInputException($"{Capital(what)} '{BadInputException.Shown(path)}' holds a NUL character, which no path can.");
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new BadInputException($"{Capital(what)} '{BadInputException.Shown(path)}' is not a valid path.", e);
        }
        var roots = confined ? Roots : null;
        // Confinement first, by name and then by real location, so that a refusal says nothing about existence.
        if (roots is not null && !Inside(full, roots)) throw Outside(path, what);
        string real = Models.ConfinedPath.Real(full);
        if (roots is not null && !Inside(real, roots)) throw Outside(path, what);
        switch (Kind(real))
        {
            case FileKind.Regular: break;
            case FileKind.Directory: throw new BadInputException($"{Capital(what)} '{BadInputException.Shown(path)}' is a folder, not a file.");
            case FileKind.Missing: throw new BadInputException($"{Capital(what)} '{BadInputException.Shown(path)}' does not exist.");
            default: throw new BadInputException($"{Capital(what)} '{BadInputException.Shown(path)}' is not a regular file (a device, a named pipe or a socket); give a file.");
        }
        long length = new FileInfo(real).Length;
        if (length > maxBytes) throw TooLarge(path, what, maxBytes);
        return real;
    }

    /// <summary>True when <paramref name="path"/> is a regular file (links followed) that exists.</summary>
    public static bool IsRegularFile(string path)
    {
        try { return !string.IsNullOrEmpty(path) && !path.Contains('\0') && Kind(Path.GetFullPath(path)) == FileKind.Regular; }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return false; }
    }

    /// <summary>"16 MB", "512 kB": a byte limit as people read it.</summary>
    internal static string Size(long bytes) =>
        bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? $"{bytes >> 30} GB"
        : bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):0.#} MB"
        : bytes >= 1 << 10 ? $"{bytes / 1024.0:0.#} kB" : $"{bytes} bytes";

    static BadInputException TooLarge(string path, string what, long maxBytes) =>
        new($"{Capital(what)} '{BadInputException.Shown(path)}' is larger than the {Size(maxBytes)} such a file may have.");

    static BadInputException Outside(string path, string what) =>
        new($"{Capital(what)} '{BadInputException.Shown(path)}' lies outside the studio's data folder and examples, the only folders this run may read; upload the file instead.");

    static string Capital(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    static string[] Normalize(IEnumerable<string> roots) =>
        roots.Where(r => r.Length > 0).SelectMany(r =>
        {
            string full = Path.GetFullPath(r);
            // Both spellings: the name as given and the real place (a root may itself sit behind a link).
            return new[] { full, Models.ConfinedPath.Real(full) }.Select(x => x.TrimEnd('/') + "/");
        }).Distinct().ToArray();

    static bool Inside(string path, IReadOnlyList<string> roots) =>
        roots.Any(r => (path.TrimEnd('/') + "/").StartsWith(r, StringComparison.Ordinal));

    enum FileKind { Missing, Regular, Directory, Other }

    static FileKind Kind(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                var buffer = new byte[256];
                // statx follows links; its struct has one layout on every Linux architecture (stx_mode: u16 at 28).
                if (statx(AtFdCwd, path, 0, StatxType, buffer) != 0) return FileKind.Missing;
                int mode = BitConverter.ToUInt16(buffer, 28) & 0xF000;
                return mode == 0x8000 ? FileKind.Regular : mode == 0x4000 ? FileKind.Directory : FileKind.Other;
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { }
        }
        if (Directory.Exists(path)) return FileKind.Directory;
        return File.Exists(path) ? FileKind.Regular : FileKind.Missing;
    }

    const int AtFdCwd = -100;
    const uint StatxType = 0x1;

    [DllImport("libc", SetLastError = true)]
    static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);

    sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
