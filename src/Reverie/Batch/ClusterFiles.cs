using System.Globalization;
using System.Text;

namespace Reverie.Batch;

/// <summary>
/// The files that hand a batch to a cluster's own scheduler: a Slurm array script and a Kubernetes
/// Indexed Job. Both run the same shard command, <c>reverie batch run MANIFEST --shard-count N</c>,
/// which reads its index from <c>SLURM_ARRAY_TASK_ID</c> or <c>JOB_COMPLETION_INDEX</c>.
/// </summary>
internal static class ClusterFiles
{
    /// <summary>The shard command's arguments after the program.</summary>
    public static string[] ShardArguments(string manifest, int shards) =>
        ["batch", "run", manifest, "--shard-count", shards.ToString(CultureInfo.InvariantCulture)];

    /// <summary>The command that runs this Reverie: its apphost, or <c>dotnet Reverie.Cli.dll</c>.</summary>
    public static string[] Self()
    {
        string process = Environment.ProcessPath ?? "reverie";
        string? entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" && entry is { Length: > 0 } ? [process, entry] : [process];
    }

    /// <summary>A word quoted for bash.</summary>
    public static string Sh(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '=' or ':' or '+' or ',')
            ? word : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// An sbatch script for an array of <paramref name="tasks"/> shards: requeued when a node fails,
    /// one log per task in <c>OUT/logs</c>, as many CPUs per task as the manifest's threads.
    /// </summary>
    public static string Slurm(BatchManifest m, int tasks, string[] program, string? partition, string? time, int? memoryMb)
    {
        if (tasks < 1 || tasks > m.Items.Count) throw new BadInputException($"--tasks must be from 1 to the {m.Items.Count} items; got {tasks}.");
        if (partition is not null && (partition.Length == 0 || !partition.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
            throw new BadInputException($"--partition '{BadInputException.Shown(partition)}' is not a partition name.");
        if (time is not null && (time.Length == 0 || !time.All(c => char.IsAsciiDigit(c) || c is ':' or '-')))
            throw new BadInputException($"--time takes Slurm's forms (MM, HH:MM:SS, D-HH:MM); got '{BadInputException.Shown(time)}'.");
        if (memoryMb is < 1 or > 64 << 20) throw new BadInputException($"--mem must be from 1 MB to 64 TB (in MB); got {memoryMb}.");
        string logs = Path.Combine(m.OutDir, "logs");
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append(CultureInfo.InvariantCulture, $"# Reverie batch ({m.Kind}, {m.Items.Count} items) as a Slurm job array of {tasks} tasks; submit with: sbatch {Sh(Path.ChangeExtension(m.File, ".sbatch"))}\n");
        s.Append("# A task may run twice or be requeued: finished items are skipped, so that is harmless.\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name=reverie-{m.Kind}\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{tasks - 1}\n");
        s.Append("#SBATCH --requeue\n");
        s.Append("#SBATCH --ntasks=1\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={m.Threads}\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --output={Sh(logs)}/%A_%a.out\n");
        if (partition is not null) s.Append(CultureInfo.InvariantCulture, $"#SBATCH --partition={partition}\n");
        if (time is not null) s.Append(CultureInfo.InvariantCulture, $"#SBATCH --time={time}\n");
        if (memoryMb is not null) s.Append(CultureInfo.InvariantCulture, $"#SBATCH --mem={memoryMb}M\n");
        s.Append("set -euo pipefail\n");
        s.Append(string.Join(' ', ["exec", .. program.Select(Sh), .. ShardArguments(m.File, tasks).Select(Sh)])).Append('\n');
        return s.ToString();
    }

    /// <summary>
    /// A Kubernetes Indexed Job (<c>batch/v1</c>) of <paramref name="completions"/> shards,
    /// <paramref name="parallelism"/> at a time, with per-index retries, mounting the claim that holds
    /// the manifest's folder at <paramref name="mountPath"/> (default: the folder's own path, so the
    /// command is the same as on the machine that planned it).
    /// </summary>
    public static string Kubernetes(BatchManifest m, int completions, int parallelism, string image, string claim, string? mountPath, int retries, string program)
    {
        if (completions < 1 || completions > m.Items.Count) throw new BadInputException($"--completions must be from 1 to the {m.Items.Count} items; got {completions}.");
        if (parallelism < 1 || parallelism > completions) throw new BadInputException($"--parallelism must be from 1 to --completions ({completions}); got {parallelism}.");
        if (retries is < 0 or > 100) throw new BadInputException($"--retries must be from 0 to 100; got {retries}.");
        if (image.Length == 0 || image.Length > 500 || image.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '"' or '\'' or '\\'))
            throw new BadInputException($"--image '{BadInputException.Shown(image)}' is not a container image reference.");
        if (!IsDnsLabel(claim)) throw new BadInputException($"--volume '{BadInputException.Shown(claim)}' is not a PersistentVolumeClaim name (lower-case letters, digits and '-').");
        string folder = Path.GetDirectoryName(m.File)!;
        if (Path.IsPathRooted(m.Out))
            throw new BadInputException($"The batch's output folder '{BadInputException.Shown(m.OutDir)}' is outside the manifest's folder; plan it with --out inside that folder, so one volume holds both.");
        string mount = mountPath ?? folder;
        if (!mount.StartsWith('/') || mount.Any(c => char.IsControl(c) || c is '"' or '\\')) throw new BadInputException($"--mount-path must be an absolute path; got '{BadInputException.Shown(mount)}'.");
        string manifestInPod = mount.TrimEnd('/') + "/" + Path.GetFileName(m.File);
        string name = $"reverie-{m.Kind}-{m.Items[0].Id[..8]}";
        string Q(string v) => "\"" + v.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
        var command = new[] { program }.Concat(ShardArguments(manifestInPod, completions));
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"# Reverie batch ({m.Kind}, {m.Items.Count} items) as a Kubernetes Indexed Job of {completions} shards; apply with: kubectl apply -f FILE\n");
        s.Append("# Each index runs the same shard command as the Slurm array; finished items are skipped, so a retried index is harmless.\n");
        s.Append("apiVersion: batch/v1\nkind: Job\nmetadata:\n");
        s.Append(CultureInfo.InvariantCulture, $"  name: {name}\n  labels:\n    app.kubernetes.io/name: reverie\n    app.kubernetes.io/component: batch-{m.Kind}\n");
        s.Append("spec:\n  completionMode: Indexed\n");
        s.Append(CultureInfo.InvariantCulture, $"  completions: {completions}\n  parallelism: {parallelism}\n  backoffLimitPerIndex: {retries}\n");
        s.Append("  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: reverie\n    spec:\n      restartPolicy: Never\n      containers:\n");
        s.Append(CultureInfo.InvariantCulture, $"        - name: shard\n          image: {Q(image)}\n");
        s.Append(CultureInfo.InvariantCulture, $"          command: [{string.Join(", ", command.Select(Q))}]\n");
        s.Append("          env:\n");
        s.Append(CultureInfo.InvariantCulture, $"            - name: REVERIE_CACHE\n              value: {Q(mount.TrimEnd('/') + "/cache")}\n");
        s.Append(CultureInfo.InvariantCulture, $"          resources:\n            requests:\n              cpu: \"{m.Threads}\"\n              memory: 2Gi\n            limits:\n              cpu: \"{m.Threads}\"\n");
        s.Append(CultureInfo.InvariantCulture, $"          volumeMounts:\n            - name: shared\n              mountPath: {Q(mount)}\n");
        s.Append(CultureInfo.InvariantCulture, $"      volumes:\n        - name: shared\n          persistentVolumeClaim:\n            claimName: {claim}\n");
        return s.ToString();
    }

    static bool IsDnsLabel(string s) =>
        s.Length is > 0 and <= 63 && s.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && s[0] != '-' && s[^1] != '-';
}
