import Database from 'better-sqlite3';
import { BuildtraceError } from '../src/errors.js';

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

export interface EvidenceRow {
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

export interface TraceRow {
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

/** The daemon's SQLite database (WAL). Other tables (evidence, outbox) join on traces.id. */
export class TraceDb {
  readonly db: Database.Database;
  private readonly insTrace;
  private readonly findTrace;
  private readonly insDrv;
  private readonly insOut;
  private readonly insIn;
  private readonly insEv;
  private readonly insOutbox;
  /** Caches every new trace and evidence row is queued for. */
  caches: readonly string[] = [];

  constructor(readonly file: string) {
    try {
      this.db = new Database(file);
    } catch (err) {
      throw new BuildtraceError('FILE_UNREADABLE', `cannot open database ${file}: ${(err as Error).message}`, { subject: file, cause: err });
    }
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash may lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    const v = this.db.prepare<[], { v: string }>("SELECT v FROM meta WHERE k = 'schema'").get();
    if (v === undefined) this.db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(v.v) > SCHEMA_VERSION) {
      throw new BuildtraceError('CONFIG_INVALID', `${file} has schema ${v.v}, newer than this buildtrace understands (${SCHEMA_VERSION})`, { subject: file });
    }
    this.insTrace = this.db.prepare(
      `INSERT INTO traces (rdrv_path, rdrv_hash, drv_name, kind, key_name, key_fp, invocation_id, statement, bundle, created_at)
       VALUES (@rdrvPath, @rdrvHash, @drvName, @kind, @keyName, @keyFp, @invocationId, @statement, @bundle, @createdAt)
       ON CONFLICT (rdrv_hash, key_fp) DO NOTHING`,
    );
    this.findTrace = this.db.prepare<[string, string], { id: number }>('SELECT id FROM traces WHERE rdrv_hash = ? AND key_fp = ?');
    this.insDrv = this.db.prepare('INSERT OR IGNORE INTO trace_drvs (drv_path, trace_id) VALUES (?, ?)');
    this.insOut = this.db.prepare('INSERT INTO outputs (trace_id, name, path, nar_hash, nar_size) VALUES (?, ?, ?, ?, ?)');
    this.insIn = this.db.prepare('INSERT INTO inputs (trace_id, path, nar_hash, nar_size) VALUES (?, ?, ?, ?)');
    this.insOutbox = this.db.prepare('INSERT OR IGNORE INTO outbox (cache, kind, ref_id, created_at) VALUES (?, ?, ?, ?)');
    this.insEv = this.db.prepare(
      `INSERT INTO evidence (kind, trace_id, key_fp, provider, format, simulated, report, certs, preimage, report_data, collected_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  private enqueue(kind: 'trace' | 'evidence', id: number): void {
    const now = new Date().toISOString();
    for (const c of this.caches) this.insOutbox.run(c, kind, id, now);
  }

  insertEvidence(e: NewEvidence, traceId: number | null = null): number {
    const certs = JSON.stringify(e.certs.map((c) => ({ role: c.role, der: Buffer.from(c.der).toString('base64') })));
    const r = this.insEv.run(e.kind, traceId, e.keyFp, e.provider, e.format, e.simulated ? 1 : 0, Buffer.from(e.report), certs, Buffer.from(e.preimage), e.reportData, e.collectedAt);
    const id = Number(r.lastInsertRowid);
    this.enqueue('evidence', id);
    return id;
  }

  evidence(filter: { keyFp?: string; traceId?: number } = {}): EvidenceRow[] {
    if (filter.traceId !== undefined) return this.db.prepare<[number], EvidenceRow>('SELECT * FROM evidence WHERE trace_id = ? ORDER BY id').all(filter.traceId);
    if (filter.keyFp !== undefined) return this.db.prepare<[string], EvidenceRow>("SELECT * FROM evidence WHERE key_fp = ? AND kind = 'key' ORDER BY id").all(filter.keyFp);
    return this.db.prepare<[], EvidenceRow>('SELECT * FROM evidence ORDER BY id').all();
  }

  /** Whether (rdrv, key) already has a trace. */
  has(rdrvHash: string, keyFp: string): boolean {
    return this.findTrace.get(rdrvHash, keyFp) !== undefined;
  }

  /**
   * Inserts traces in one transaction. A trace whose (rdrv, key) exists only gains
   * the .drv alias. Returns, per trace, whether it was new.
   */
  insertAll(traces: readonly NewTrace[], after?: (db: Database.Database) => void): boolean[] {
    const tx = this.db.transaction((ts: readonly NewTrace[]) => {
      const res: boolean[] = [];
      for (const t of ts) {
        const r = this.insTrace.run({ ...t, statement: Buffer.from(t.statement) });
        const id = r.changes === 1 ? Number(r.lastInsertRowid) : (this.findTrace.get(t.rdrvHash, t.keyFp)?.id as number);
        if (r.changes === 1) {
          for (const o of t.outputs) this.insOut.run(id, o.name, o.path, o.narHash, o.narSize);
          for (const i of t.inputs) this.insIn.run(id, i.path, i.narHash, i.narSize);
          if (t.evidence) this.insertEvidence(t.evidence, id);
          this.enqueue('trace', id);
        }
        this.insDrv.run(t.drvPath, id);
        if (t.drvPath !== t.rdrvPath) this.insDrv.run(t.rdrvPath, id);
        res.push(r.changes === 1);
      }
      after?.(this.db);
      return res;
    });
    return tx(traces);
  }

  aliasOnly(drvPath: string, rdrvHash: string, keyFp: string): boolean {
    const t = this.findTrace.get(rdrvHash, keyFp);
    if (!t) return false;
    this.insDrv.run(drvPath, t.id);
    return true;
  }

  count(): number {
    return (this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM traces').get() as { n: number }).n;
  }

  lastCreated(): string | undefined {
    return this.db.prepare<[], { t: string }>('SELECT max(created_at) AS t FROM traces').get()?.t ?? undefined;
  }

  list(limit: number, offset = 0): TraceRow[] {
    return this.db
      .prepare<[number, number], TraceRow>(
        'SELECT id, rdrv_path, rdrv_hash, drv_name, kind, key_name, key_fp, invocation_id, created_at FROM traces ORDER BY id DESC LIMIT ? OFFSET ?',
      )
      .all(limit, offset);
  }

  /** Finds traces by any .drv the hook named, the resolved .drv, or an output path. */
  find(path: string): TraceDetail[] {
    const ids = this.db
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
    const row = this.db
      .prepare<[number], TraceRow & { bundle: string }>(
        'SELECT id, rdrv_path, rdrv_hash, drv_name, kind, key_name, key_fp, invocation_id, created_at, bundle FROM traces WHERE id = ?',
      )
      .get(id);
    if (!row) return undefined;
    return {
      ...row,
      drvs: this.db.prepare<[number], { drv_path: string }>('SELECT drv_path FROM trace_drvs WHERE trace_id = ? ORDER BY drv_path').all(id).map((r) => r.drv_path),
      outputs: this.db.prepare<[number], TraceDetail['outputs'][number]>('SELECT name, path, nar_hash, nar_size FROM outputs WHERE trace_id = ? ORDER BY name').all(id),
      inputs: this.db.prepare<[number], TraceDetail['inputs'][number]>('SELECT path, nar_hash, nar_size FROM inputs WHERE trace_id = ? ORDER BY path').all(id),
    };
  }

  close(): void {
    this.db.close();
  }
}
