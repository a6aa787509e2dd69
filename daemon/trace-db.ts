import Database from 'better-sqlite3';
import { renameSync, statSync, unlinkSync } from 'node:fs';
import { BuildtraceError, errorMessage } from '../src/errors.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
  id            INTEGER PRIMARY KEY,
  rdrv_path     TEXT NOT NULL,
  rdrv_hash     TEXT NOT NULL,
  drv_name      TEXT NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('ia', 'ca', 'fixed')),
  key_name      TEXT NOT NULL,
  key_fp        TEXT NOT NULL,
  invocation_id TEXT NOT NULL,
  statement     BLOB NOT NULL,   -- the exact signed bytes
  bundle        TEXT NOT NULL,   -- one JSON line
  created_at    TEXT NOT NULL,
  UNIQUE (rdrv_hash, key_fp)
);
-- every .drv the hook named that resolved to a trace (the resolved and the unresolved one)
CREATE TABLE IF NOT EXISTS trace_drvs (
  drv_path TEXT NOT NULL,
  trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  PRIMARY KEY (drv_path, trace_id)
);
CREATE TABLE IF NOT EXISTS outputs (
  trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  name     TEXT NOT NULL,
  path     TEXT NOT NULL,
  nar_hash TEXT NOT NULL,       -- lowercase hex SHA-256 of the NAR
  nar_size INTEGER NOT NULL,
  PRIMARY KEY (trace_id, name)
);
CREATE INDEX IF NOT EXISTS outputs_path ON outputs(path);
CREATE TABLE IF NOT EXISTS inputs (
  trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  path     TEXT NOT NULL,
  nar_hash TEXT NOT NULL,
  nar_size INTEGER NOT NULL,
  PRIMARY KEY (trace_id, path)
) WITHOUT ROWID;
-- TEE evidence: one per daemon start and key (kind 'key'), or one per trace (kind 'trace')
CREATE TABLE IF NOT EXISTS evidence (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL CHECK (kind IN ('key', 'trace')),
  trace_id     INTEGER REFERENCES traces(id) ON DELETE CASCADE,
  key_fp       TEXT NOT NULL,
  provider     TEXT NOT NULL,
  format       TEXT NOT NULL,
  simulated    INTEGER NOT NULL,
  report       BLOB NOT NULL,
  certs        TEXT NOT NULL,   -- JSON [{"role", "der": base64}]
  preimage     BLOB NOT NULL,   -- REPORT_DATA = SHA-512(preimage)
  report_data  TEXT NOT NULL,
  collected_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_key ON evidence(key_fp);
-- what still has to reach each cache; rows are added in the same transaction as their trace
CREATE TABLE IF NOT EXISTS outbox (
  id              INTEGER PRIMARY KEY,
  cache           TEXT NOT NULL,
  kind            TEXT NOT NULL CHECK (kind IN ('trace', 'evidence')),
  ref_id          INTEGER NOT NULL,
  state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,   -- ms since the epoch
  last_error      TEXT,
  created_at      TEXT NOT NULL,
  done_at         TEXT,
  UNIQUE (cache, kind, ref_id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_at);
`;

export interface NewEvidence {
  readonly kind: 'key' | 'trace';
  readonly keyFp: string;
  readonly provider: string;
  readonly format: string;
  readonly simulated: boolean;
  readonly report: Uint8Array;
  readonly certs: ReadonlyArray<{ role: string; der: Uint8Array }>;
  readonly preimage: Uint8Array;
  readonly reportData: string;
  readonly collectedAt: string;
}

interface EvidenceRow {
  id: number;
  kind: string;
  trace_id: number | null;
  key_fp: string;
  provider: string;
  format: string;
  simulated: number;
  report: Buffer;
  certs: string;
  preimage: Buffer;
  report_data: string;
  collected_at: string;
}

export interface NewTrace {
  readonly drvPath: string;
  readonly rdrvPath: string;
  readonly rdrvHash: string;
  readonly drvName: string;
  readonly kind: 'ia' | 'ca' | 'fixed';
  readonly keyName: string;
  readonly keyFp: string;
  readonly invocationId: string;
  readonly statement: Uint8Array;
  readonly bundle: string;
  readonly createdAt: string;
  readonly outputs: ReadonlyArray<{ name: string; path: string; narHash: string; narSize: number }>;
  readonly inputs: ReadonlyArray<{ path: string; narHash: string; narSize: number }>;
  readonly evidence?: NewEvidence;
}

interface TraceRow {
  id: number;
  rdrv_path: string;
  rdrv_hash: string;
  drv_name: string;
  kind: string;
  key_name: string;
  key_fp: string;
  invocation_id: string;
  created_at: string;
}

export interface TraceDetail extends TraceRow {
  bundle: string;
  drvs: string[];
  outputs: { name: string; path: string; nar_hash: string; nar_size: number }[];
  inputs: { path: string; nar_hash: string; nar_size: number }[];
}

export interface OutboxRow {
  id: number;
  cache: string;
  kind: 'trace' | 'evidence';
  ref_id: number;
  attempts: number;
}

interface OutboxCounts {
  pending: number;
  failed: number;
  done: number;
}

/** The files SQLite writes for one database, by (device, inode). */
interface FileIds {
  main: string | undefined;
  wal: string | undefined;
  shm: string | undefined;
}

function fileId(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function fileIds(file: string): FileIds {
  return { main: fileId(file), wal: fileId(`${file}-wal`), shm: fileId(`${file}-shm`) };
}

function prepareAll(db: Database.Database) {
  return {
    insTrace: db.prepare(
      `INSERT INTO traces (rdrv_path, rdrv_hash, drv_name, kind, key_name, key_fp, invocation_id, statement, bundle, created_at)
       VALUES (@rdrvPath, @rdrvHash, @drvName, @kind, @keyName, @keyFp, @invocationId, @statement, @bundle, @createdAt)
       ON CONFLICT (rdrv_hash, key_fp) DO NOTHING`,
    ),
    findTrace: db.prepare<[string, string], { id: number }>('SELECT id FROM traces WHERE rdrv_hash = ? AND key_fp = ?'),
    insDrv: db.prepare('INSERT OR IGNORE INTO trace_drvs (drv_path, trace_id) VALUES (?, ?)'),
    insOut: db.prepare('INSERT INTO outputs (trace_id, name, path, nar_hash, nar_size) VALUES (?, ?, ?, ?, ?)'),
    insIn: db.prepare('INSERT INTO inputs (trace_id, path, nar_hash, nar_size) VALUES (?, ?, ?, ?)'),
    insOutbox: db.prepare('INSERT OR IGNORE INTO outbox (cache, kind, ref_id, created_at) VALUES (?, ?, ?, ?)'),
    insEv: db.prepare(
      `INSERT INTO evidence (kind, trace_id, key_fp, provider, format, simulated, report, certs, preimage, report_data, collected_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    markDone: db.prepare("UPDATE outbox SET state = 'done', done_at = ?, last_error = NULL WHERE id = ?"),
    markFailed: db.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, state = ? WHERE id = ?'),
  };
}

/**
 * The daemon's SQLite database (WAL): the one module that holds its schema and SQL.
 * Other tables (evidence, outbox) join on traces.id.
 *
 * It notices when its files are deleted or replaced under it (`checkFiles`, called before
 * and after every commit): SQLite would go on writing into the unlinked inode and every
 * later commit would vanish at the next start. It then writes what the open connection
 * still holds back to the path (VACUUM INTO), or, when another database has been put
 * there, next to it as `buildtrace.db.saved-<time>`, and reopens the path.
 */
export class TraceDb {
  private conn!: Database.Database;
  private st!: ReturnType<typeof prepareAll>;
  private ids!: FileIds;
  /** Connections whose files were removed: never closed (SQLite's close unlinks `<file>-wal` by name). */
  private readonly retired: Database.Database[] = [];
  /** Caches every new trace and evidence row is queued for. */
  caches: readonly string[] = [];
  /** Set once SQLite has reported the file corrupt: from then on nothing reads or writes it. */
  private corrupt: string | undefined;
  /** Told once per recovery, with what happened. */
  onRecovered: ((message: string) => void) | undefined;

  constructor(readonly file: string) {
    this.open();
  }

  private open(): void {
    let db: Database.Database | undefined;
    try {
      db = new Database(this.file);
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash may lose the last commits.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.exec(SCHEMA);
      const v = db.prepare<[], { v: string }>("SELECT v FROM meta WHERE k = 'schema'").get();
      if (v === undefined) db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
      else if (Number(v.v) > SCHEMA_VERSION) {
        throw new BuildtraceError('CONFIG_INVALID', `${this.file} has schema ${v.v}, newer than this buildtrace understands (${SCHEMA_VERSION})`, {
          subject: this.file,
        });
      }
      this.st = prepareAll(db);
    } catch (err) {
      db?.close();
      if (err instanceof BuildtraceError) throw err;
      throw new BuildtraceError('DATABASE_ERROR', `cannot open database ${this.file}: ${errorMessage(err)}`, { subject: this.file, cause: err });
    }
    this.conn = db;
    this.ids = fileIds(this.file);
  }

  /** What changed about the database's files since they were opened, if anything. */
  private filesChanged(): string | undefined {
    const now = fileIds(this.file);
    if (now.main !== this.ids.main) return now.main === undefined ? 'was deleted' : 'was replaced by another file';
    if (now.wal !== this.ids.wal) return now.wal === undefined ? '-wal was deleted' : '-wal was replaced';
    if (now.shm !== this.ids.shm) return now.shm === undefined ? '-shm was deleted' : '-shm was replaced';
    return undefined;
  }

  /**
   * Makes sure commits land in the file at `this.file`. When its files were deleted or
   * replaced, saves everything the open connection holds and reopens (see the class comment).
   * Throws (and changes nothing) if that cannot be done, e.g. on a full disk.
   */
  checkFiles(): void {
    const why = this.filesChanged();
    if (why === undefined) return;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const tmp = `${this.file}.recover-${process.pid}-${stamp}`;
    try {
      this.conn.exec(`VACUUM INTO '${tmp.replace(/'/g, "''")}'`);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing written
      }
      throw new BuildtraceError('DATABASE_ERROR', `database ${this.file} ${why} while the daemon ran, and saving its contents failed: ${errorMessage(err)}`, {
        subject: this.file,
        cause: err,
      });
    }
    const main = fileId(this.file);
    const ours = main === undefined || main === this.ids.main;
    let savedAs = this.file;
    if (ours) {
      // The path holds our (possibly incomplete) file or nothing: the copy replaces it, and
      // SQLite's side files, which belong to the old file, must not be applied to the copy.
      for (const side of ['-wal', '-shm']) {
        try {
          unlinkSync(this.file + side);
        } catch {
          // gone already
        }
      }
      renameSync(tmp, this.file);
    } else {
      // Someone put another database there: use it, and keep ours beside it.
      savedAs = `${this.file}.saved-${stamp}`;
      renameSync(tmp, savedAs);
    }
    this.retired.push(this.conn);
    this.open();
    this.onRecovered?.(
      ours
        ? `database ${this.file} ${why} while the daemon ran; wrote its contents back and reopened it`
        : `database ${this.file} ${why} while the daemon ran; now using that file, the previous contents are in ${savedAs}`,
    );
  }

  /**
   * Remembers an error if it says the file is corrupt. A corrupt page may sit under one
   * table and not another, so one failed query condemns the whole file: commits stop (the
   * spool keeps every record) and every client command says why.
   */
  noteError(err: unknown): void {
    const code = (err as { code?: unknown }).code;
    if (this.corrupt === undefined && typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) {
      this.corrupt = `database error: ${errorMessage(err)} (${code})`;
    }
  }

  /** Throws when the file is known to be corrupt (see `noteError`). */
  assertUsable(): void {
    if (this.corrupt !== undefined) {
      throw new BuildtraceError(
        'DATABASE_ERROR',
        `${this.file}: ${this.corrupt}; stop trace-daemon and move the file aside or restore a backup (the spool keeps what was not committed)`,
        {
          subject: this.file,
        },
      );
    }
  }

  private enqueue(kind: 'trace' | 'evidence', id: number): void {
    const now = new Date().toISOString();
    for (const c of this.caches) this.st.insOutbox.run(c, kind, id, now);
  }

  insertEvidence(e: NewEvidence, traceId: number | null = null): number {
    const certs = JSON.stringify(e.certs.map((c) => ({ role: c.role, der: Buffer.from(c.der).toString('base64') })));
    const r = this.st.insEv.run(
      e.kind,
      traceId,
      e.keyFp,
      e.provider,
      e.format,
      e.simulated ? 1 : 0,
      Buffer.from(e.report),
      certs,
      Buffer.from(e.preimage),
      e.reportData,
      e.collectedAt,
    );
    const id = Number(r.lastInsertRowid);
    this.enqueue('evidence', id);
    return id;
  }

  evidence(filter: { keyFp?: string; traceId?: number } = {}): EvidenceRow[] {
    if (filter.traceId !== undefined)
      return this.conn.prepare<[number], EvidenceRow>('SELECT * FROM evidence WHERE trace_id = ? ORDER BY id').all(filter.traceId);
    if (filter.keyFp !== undefined)
      return this.conn.prepare<[string], EvidenceRow>("SELECT * FROM evidence WHERE key_fp = ? AND kind = 'key' ORDER BY id").all(filter.keyFp);
    return this.conn.prepare<[], EvidenceRow>('SELECT * FROM evidence ORDER BY id').all();
  }

  /** Whether (rdrv, key) already has a trace. */
  has(rdrvHash: string, keyFp: string): boolean {
    return this.st.findTrace.get(rdrvHash, keyFp) !== undefined;
  }

  /**
   * Inserts traces in one transaction. A trace whose (rdrv, key) exists only gains
   * the .drv alias; `aliases` only gain theirs. Returns, per trace, whether it was new.
   * The files are checked before and after the commit, so what the caller deletes after
   * this returns is in the file at `this.file`.
   */
  insertAll(traces: readonly NewTrace[], aliases: ReadonlyArray<{ drvPath: string; rdrvHash: string; keyFp: string }> = []): boolean[] {
    this.assertUsable();
    this.checkFiles();
    const tx = this.conn.transaction((ts: readonly NewTrace[]) => {
      const res: boolean[] = [];
      for (const t of ts) {
        const r = this.st.insTrace.run({ ...t, statement: Buffer.from(t.statement) });
        const id = r.changes === 1 ? Number(r.lastInsertRowid) : (this.st.findTrace.get(t.rdrvHash, t.keyFp)?.id as number);
        if (r.changes === 1) {
          for (const o of t.outputs) this.st.insOut.run(id, o.name, o.path, o.narHash, o.narSize);
          for (const i of t.inputs) this.st.insIn.run(id, i.path, i.narHash, i.narSize);
          if (t.evidence) this.insertEvidence(t.evidence, id);
          this.enqueue('trace', id);
        }
        this.st.insDrv.run(t.drvPath, id);
        if (t.drvPath !== t.rdrvPath) this.st.insDrv.run(t.rdrvPath, id);
        res.push(r.changes === 1);
      }
      for (const a of aliases) {
        const t = this.st.findTrace.get(a.rdrvHash, a.keyFp);
        if (t) this.st.insDrv.run(a.drvPath, t.id);
      }
      return res;
    });
    let res: boolean[];
    try {
      res = tx(traces);
    } catch (err) {
      this.noteError(err);
      throw err;
    }
    this.checkFiles();
    return res;
  }

  count(): number {
    return (this.conn.prepare<[], { n: number }>('SELECT count(*) AS n FROM traces').get() as { n: number }).n;
  }

  lastCreated(): string | undefined {
    return this.conn.prepare<[], { t: string }>('SELECT max(created_at) AS t FROM traces').get()?.t ?? undefined;
  }

  list(limit: number, offset = 0): TraceRow[] {
    return this.conn
      .prepare<[number, number], TraceRow>(
        'SELECT id, rdrv_path, rdrv_hash, drv_name, kind, key_name, key_fp, invocation_id, created_at FROM traces ORDER BY id DESC LIMIT ? OFFSET ?',
      )
      .all(limit, offset);
  }

  /** Finds traces by any .drv the hook named, the resolved .drv, or an output path. */
  find(path: string): TraceDetail[] {
    const ids = this.conn
      .prepare<[string, string, string], { id: number }>(
        `SELECT trace_id AS id FROM trace_drvs WHERE drv_path = ?
         UNION SELECT id FROM traces WHERE rdrv_path = ?
         UNION SELECT trace_id AS id FROM outputs WHERE path = ?`,
      )
      .all(path, path, path)
      .map((r) => r.id);
    return ids.map((id) => this.detail(id)).filter((d): d is TraceDetail => d !== undefined);
  }

  detail(id: number): TraceDetail | undefined {
    const row = this.conn
      .prepare<[number], TraceRow & { bundle: string }>(
        'SELECT id, rdrv_path, rdrv_hash, drv_name, kind, key_name, key_fp, invocation_id, created_at, bundle FROM traces WHERE id = ?',
      )
      .get(id);
    if (!row) return undefined;
    return {
      ...row,
      drvs: this.conn
        .prepare<[number], { drv_path: string }>('SELECT drv_path FROM trace_drvs WHERE trace_id = ? ORDER BY drv_path')
        .all(id)
        .map((r) => r.drv_path),
      outputs: this.conn
        .prepare<[number], TraceDetail['outputs'][number]>('SELECT name, path, nar_hash, nar_size FROM outputs WHERE trace_id = ? ORDER BY name')
        .all(id),
      inputs: this.conn
        .prepare<[number], TraceDetail['inputs'][number]>('SELECT path, nar_hash, nar_size FROM inputs WHERE trace_id = ? ORDER BY path')
        .all(id),
    };
  }

  // --- the outbox: what still has to reach each cache ---

  /** Queues what exists but was never queued for a cache (a cache added to the config later). */
  backfillOutbox(cache: string): void {
    const now = new Date().toISOString();
    this.conn.prepare("INSERT OR IGNORE INTO outbox (cache, kind, ref_id, created_at) SELECT ?, 'trace', id, ? FROM traces").run(cache, now);
    this.conn.prepare("INSERT OR IGNORE INTO outbox (cache, kind, ref_id, created_at) SELECT ?, 'evidence', id, ? FROM evidence").run(cache, now);
  }

  /** Pending rows for `cache` due at `now` (ms since the epoch), oldest first. */
  dueRows(cache: string, now: number, limit = 2000): OutboxRow[] {
    return this.conn
      .prepare<[string, number, number], OutboxRow>(
        "SELECT id, cache, kind, ref_id, attempts FROM outbox WHERE cache = ? AND state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
      )
      .all(cache, now, limit);
  }

  outputPaths(traceIds: readonly number[]): string[] {
    if (traceIds.length === 0) return [];
    return (
      this.conn.prepare(`SELECT DISTINCT path FROM outputs WHERE trace_id IN (${traceIds.map(() => '?').join(',')})`).all(...traceIds) as { path: string }[]
    ).map((r) => r.path);
  }

  traceBundle(id: number): { rdrv_hash: string; bundle: string } | undefined {
    return this.conn.prepare<[number], { rdrv_hash: string; bundle: string }>('SELECT rdrv_hash, bundle FROM traces WHERE id = ?').get(id);
  }

  evidenceRow(id: number): EvidenceRow | undefined {
    return this.conn.prepare<[number], EvidenceRow>('SELECT * FROM evidence WHERE id = ?').get(id);
  }

  rdrvHashOf(traceId: number): string | undefined {
    return this.conn.prepare<[number], { rdrv_hash: string }>('SELECT rdrv_hash FROM traces WHERE id = ?').get(traceId)?.rdrv_hash;
  }

  /** The content-addressed outputs of a trace (for build-trace-v2 entries). */
  caOutputs(traceId: number): { rdrv_path: string; name: string; path: string }[] {
    return this.conn
      .prepare<[number], { rdrv_path: string; name: string; path: string }>(
        "SELECT t.rdrv_path, o.name, o.path FROM traces t JOIN outputs o ON o.trace_id = t.id WHERE t.id = ? AND t.kind = 'ca'",
      )
      .all(traceId);
  }

  markDone(ids: readonly number[]): void {
    const now = new Date().toISOString();
    this.conn.transaction(() => {
      for (const id of ids) this.st.markDone.run(now, id);
    })();
  }

  /** One more failed attempt: `permanent` rows wait for `trace-daemon retry`, others until `nextAttemptAt(row)`. */
  markFailed(rows: readonly OutboxRow[], message: string, permanent: boolean, nextAttemptAt: (r: OutboxRow) => number): void {
    this.conn.transaction(() => {
      for (const r of rows) this.st.markFailed.run(nextAttemptAt(r), message, permanent ? 'failed' : 'pending', r.id);
    })();
  }

  outboxCounts(cache: string): OutboxCounts {
    const rows = this.conn.prepare<[string], { state: string; n: number }>('SELECT state, count(*) AS n FROM outbox WHERE cache = ? GROUP BY state').all(cache);
    const get = (s: string): number => rows.find((r) => r.state === s)?.n ?? 0;
    return { pending: get('pending'), failed: get('failed'), done: get('done') };
  }

  /** Pending rows (all caches, or one), with when each is next tried and why it last failed. */
  pendingRows(cache?: string): { cache: string; next_attempt_at: number; last_error: string | null }[] {
    return cache === undefined
      ? this.conn
          .prepare<[], { cache: string; next_attempt_at: number; last_error: string | null }>(
            "SELECT cache, next_attempt_at, last_error FROM outbox WHERE state = 'pending'",
          )
          .all()
      : this.conn
          .prepare<[string], { cache: string; next_attempt_at: number; last_error: string | null }>(
            "SELECT cache, next_attempt_at, last_error FROM outbox WHERE state = 'pending' AND cache = ?",
          )
          .all(cache);
  }

  failedRows(): { cache: string; last_error: string | null }[] {
    return this.conn.prepare<[], { cache: string; last_error: string | null }>("SELECT cache, last_error FROM outbox WHERE state = 'failed'").all();
  }

  /** Puts failed rows (of one cache, or all) back in the queue, due now. Returns how many. */
  requeueFailed(cache?: string): number {
    const sql = "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE state = 'failed'";
    return (cache === undefined ? this.conn.prepare(sql).run() : this.conn.prepare(`${sql} AND cache = ?`).run(cache)).changes;
  }

  close(): void {
    this.conn.close();
  }
}
