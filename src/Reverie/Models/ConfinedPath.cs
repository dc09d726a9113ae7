namespace Reverie.Models;

/// <summary>
/// The one path policy for names read from untrusted files (a model's external data, a registry
/// entry): a relative name that, with every symbolic link resolved, stays inside its folder.
/// </summary>
internal static class ConfinedPath
{
    /// <summary>
    /// The real path of <paramref name="relative"/> inside <paramref name="root"/>, or null when it is
    /// absolute or leads outside the folder (through <c>..</c> or a link).
    /// </summary>
    public static string? Resolve(string root, string relative)
    {
        if (relative.Length == 0 || Path.IsPathRooted(relative) || relative.Contains('\0')) return null;
        string realRoot = Real(Path.GetFullPath(root)).TrimEnd('/');
        string real = Real(Path.GetFullPath(Path.Combine(root, relative)));
        return real.StartsWith(realRoot + "/", StringComparison.Ordinal) ? real : null;
    }

    /// <summary>The path with every symbolic link in it resolved (components that do not exist are kept as they are).</summary>
    public static string Real(string full)
    {
        string? parent = Path.GetDirectoryName(full);
        if (parent is null) return full;
        string joined = Path.Combine(Real(parent), Path.GetFileName(full));
        try
        {
            FileSystemInfo info = Directory.Exists(joined) ? new DirectoryInfo(joined) : new FileInfo(joined);
            if (info.LinkTarget is null) return joined;
            return info.ResolveLinkTarget(returnFinalTarget: true) is { } target ? Real(Path.GetFullPath(target.FullName)) : joined;
        }
        catch (IOException) { return joined; }
        catch (UnauthorizedAccessException) { return joined; }
    }
}
