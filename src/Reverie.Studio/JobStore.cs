using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace Reverie.Studio;

/// <summary>Where a studio job stands.</summary>
public enum StudioJobState
{
    /// <summary>Waiting for a worker.</summary>
    Queued,
    /// <summary>A worker runs it.</summary>
    Running,
    /// <summary>Finished with its outputs.</summary>
    Done,
    /// <summary>Stopped by an error (see its error sentence).</summary>
    Failed,
    /// <summary>Cancelled by a user; a running job keeps what it had made.</summary>
    Cancelled,
    /// <summary>The studio stopped while it ran; its last preview is kept, and it can be resumed.</summary>
    Interrupted,
}

/// <summary>A job as the studio keeps it.</summary>
public sealed record StudioJob
{
    /// <summary>Its number.</summary>
    public long Id { get; init; }
    /// <summary>The command (dream, visualize ...).</summary>
    public required string Kind { get; init; }
    /// <summary>The recipe it runs (JSON).</summary>
    public required string Recipe { get; init; }
    /// <summary>Where it stands.</summary>
    public StudioJobState State { get; init; }
    /// <summary>When it was submitted, started and finished (UTC).</summary>
    public DateTime Created { get; init; }
    /// <inheritdoc cref="Created"/>
    public DateTime? Started { get; init; }
    /// <inheritdoc cref="Created"/>
    public DateTime? Finished { get; init; }
    /// <summary>The job's one-line summary, when it ended.</summary>
    public string? Summary { get; init; }
    /// <summary>Why it failed, one sentence.</summary>
    public string? Error { get; init; }
    /// <summary>The files it wrote (names in its folder), the main one first.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];
    /// <summary>The fraction done, 0..1.</summary>
    public double Progress { get; init; }
    /// <summary>Where it is ("octave 2/4").</summary>
    public string? Stage { get; init; }
    /// <summary>The number of the latest preview (0: none yet).</summary>
    public int Previews { get; init; }
    /// <summary>How many times a worker started it.</summary>
    public int Runs { get; init; }

    /// <summary>Whether it will not change any more.</summary>
    public bool Ended => State is StudioJobState.Done or StudioJobState.Failed or StudioJobState.Cancelled or StudioJobState.Interrupted;
}

/// <summary>
/// The job queue, persistent in SQLite (WAL): a job is claimed by one worker in one statement, so no
/// job runs twice, and a studio that stopped while jobs ran marks them interrupted when it starts.
/// </summary>
public sealed class JobStore
{
    readonly string _connection;

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/>.</summary>
    public JobStore(string path)
    {
        _connection = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        try { Create(); }
        catch (SqliteException e) when (e.SqliteErrorCode is 26 or 11) // SQLITE_NOTADB, SQLITE_CORRUPT
        {
            throw new BadInputException($"The studio's job database '{BadInputException.Shown(path, 120)}' is damaged (not a SQLite database, or a corrupt one: {e.SqliteErrorCode}); move it aside to start with an empty queue, or give another --data.");
        }
    }

    void Create()
    {
        using var c = Open();
        Exec(c, """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS jobs(
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              kind TEXT NOT NULL,
              recipe TEXT NOT NULL,
              state TEXT NOT NULL,
              created TEXT NOT NULL,
              started TEXT, finished TEXT, summary TEXT, error TEXT,
              files TEXT NOT NULL DEFAULT '[]',
              progress REAL NOT NULL DEFAULT 0,
              stage TEXT,
              previews INTEGER NOT NULL DEFAULT 0,
              runs INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
            """);
    }

    SqliteConnection Open()
    {
        var c = new SqliteConnection(_connection);
        c.Open();
        using var busy = c.CreateCommand();
        busy.CommandText = "PRAGMA busy_timeout=30000;";
        busy.ExecuteNonQuery();
        return c;
    }

    static int Exec(SqliteConnection c, string sql, params (string, object?)[] args)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v ?? DBNull.Value);
        return cmd.ExecuteNonQuery();
    }

    static string Text(StudioJobState s) => s.ToString().ToLowerInvariant();
    static string Time(DateTime t) => t.ToUniversalTime().ToString("O");

    /// <summary>Jobs that were running when the studio stopped become interrupted; returns how many.</summary>
    public int MarkRunningInterrupted()
    {
        using var c = Open();
        return Exec(c, "UPDATE jobs SET state='interrupted', finished=$t WHERE state='running'", ("$t", Time(DateTime.UtcNow)));
    }

    /// <summary>Queues a job unless <paramref name="maxQueued"/> jobs already wait; returns its id, or null when the queue is full.</summary>
    public long? Add(string kind, string recipe, int maxQueued)
    {
        using var c = Open();
        using var tx = c.BeginTransaction(deferred: false);
        using var count = c.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM jobs WHERE state='queued'";
        if ((long)count.ExecuteScalar()! >= maxQueued) return null;
        using var ins = c.CreateCommand();
        ins.CommandText = "INSERT INTO jobs(kind, recipe, state, created) VALUES($k, $r, 'queued', $t) RETURNING id";
        ins.Parameters.AddWithValue("$k", kind);
        ins.Parameters.AddWithValue("$r", recipe);
        ins.Parameters.AddWithValue("$t", Time(DateTime.UtcNow));
        long id = (long)ins.ExecuteScalar()!;
        tx.Commit();
        return id;
    }

    /// <summary>Claims the oldest queued job for a worker (it becomes running), or null.</summary>
    public StudioJob? Claim()
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = """
            UPDATE jobs SET state='running', started=$t, runs=runs+1, progress=0, stage=NULL, error=NULL, summary=NULL
            WHERE id=(SELECT id FROM jobs WHERE state='queued' ORDER BY id LIMIT 1) AND state='queued'
            RETURNING *
            """;
        cmd.Parameters.AddWithValue("$t", Time(DateTime.UtcNow));
        using var r = cmd.ExecuteReader();
        return r.Read() ? Read(r) : null;
    }

    /// <summary>Records a running job's progress.</summary>
    public void Progress(long id, double fraction, string? stage, int previews)
    {
        using var c = Open();
        Exec(c, "UPDATE jobs SET progress=$p, stage=$s, previews=$v WHERE id=$id AND state='running'", ("$p", fraction), ("$s", stage), ("$v", previews), ("$id", id));
    }

    /// <summary>Ends a running job.</summary>
    public void Finish(long id, StudioJobState state, string? summary, string? error, IReadOnlyList<string> files)
    {
        using var c = Open();
        Exec(c, "UPDATE jobs SET state=$st, finished=$t, summary=$s, error=$e, files=$f, progress=CASE WHEN $st='done' THEN 1 ELSE progress END WHERE id=$id AND state='running'",
            ("$st", Text(state)), ("$t", Time(DateTime.UtcNow)), ("$s", summary), ("$e", error), ("$f", new JsonArray([.. files.Select(f => (JsonNode?)f)]).ToJsonString()), ("$id", id));
    }

    /// <summary>Cancels a queued job; returns whether it was queued.</summary>
    public bool CancelQueued(long id)
    {
        using var c = Open();
        return Exec(c, "UPDATE jobs SET state='cancelled', finished=$t WHERE id=$id AND state='queued'", ("$t", Time(DateTime.UtcNow)), ("$id", id)) == 1;
    }

    /// <summary>Queues an interrupted, failed or cancelled job again (resume: it runs from its recipe's start).</summary>
    public bool Requeue(long id)
    {
        using var c = Open();
        return Exec(c, "UPDATE jobs SET state='queued', started=NULL, finished=NULL, progress=0, stage=NULL, error=NULL, summary=NULL WHERE id=$id AND state IN ('interrupted','failed','cancelled')", ("$id", id)) == 1;
    }

    /// <summary>Removes an ended job's row; returns whether it was removed.</summary>
    public bool Delete(long id)
    {
        using var c = Open();
        return Exec(c, "DELETE FROM jobs WHERE id=$id AND state NOT IN ('queued','running')", ("$id", id)) == 1;
    }

    /// <summary>One job, or null.</summary>
    public StudioJob? Get(long id) => Query("SELECT * FROM jobs WHERE id=$id", ("$id", id)).FirstOrDefault();

    /// <summary>Jobs, newest first, optionally of one state and one kind.</summary>
    public IReadOnlyList<StudioJob> List(StudioJobState? state = null, string? kind = null, int limit = 500) =>
        Query("SELECT * FROM jobs WHERE ($s IS NULL OR state=$s) AND ($k IS NULL OR kind=$k) ORDER BY id DESC LIMIT $n",
            ("$s", state is { } s ? Text(s) : null), ("$k", kind), ("$n", limit));

    List<StudioJob> Query(string sql, params (string, object?)[] args)
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v ?? DBNull.Value);
        using var r = cmd.ExecuteReader();
        var list = new List<StudioJob>();
        while (r.Read()) list.Add(Read(r));
        return list;
    }

    static StudioJob Read(SqliteDataReader r)
    {
        DateTime? T(string col) => r[col] is string s ? DateTime.Parse(s, null, System.Globalization.DateTimeStyles.RoundtripKind) : null;
        return new StudioJob
        {
            Id = r.GetInt64(r.GetOrdinal("id")),
            Kind = r.GetString(r.GetOrdinal("kind")),
            Recipe = r.GetString(r.GetOrdinal("recipe")),
            State = Enum.Parse<StudioJobState>(r.GetString(r.GetOrdinal("state")), ignoreCase: true),
            Created = T("created")!.Value,
            Started = T("started"),
            Finished = T("finished"),
            Summary = r["summary"] as string,
            Error = r["error"] as string,
            Files = JsonNode.Parse(r.GetString(r.GetOrdinal("files")))!.AsArray().Select(n => n!.GetValue<string>()).ToList(),
            Progress = r.GetDouble(r.GetOrdinal("progress")),
            Stage = r["stage"] as string,
            Previews = r.GetInt32(r.GetOrdinal("previews")),
            Runs = r.GetInt32(r.GetOrdinal("runs")),
        };
    }
}
