/**
 * The substituter's state directory database (SQLite, WAL): the verdict cache, the producer
 * hints learnt from verified worlds, and what was served and refused (for `serve status`).
 * A verdict is keyed by the derivation, the policy's digest and the caches; it also records
 * the digest of every trace object that decided it, and is reused only while those match.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { BuildtraceError, errorMessage } from '../errors.js';
import type { VerifyResult } from '../verify/closure.js';

const STATE_DB_FILE = 'substituter.db';

/** The digest of the bundles stored under one resolved derivation in all sources. */
export interface TraceDigest {
  readonly hash: string;
  readonly digest: string;
}

interface CachedVerdict {
  readonly result: VerifyResult;
  readonly traces: readonly TraceDigest[];
}

interface Refusal {
  readonly at: string;
  readonly path: string;
  readonly drv: string | null;
  readonly codes: string[];
  readonly detail: string;
}

/** What `serve status` shows. */
export interface StatusReport {
  readonly listen: string | null;
  readonly publicKey: string | null;
  readonly policy: string | null;
  readonly policyDigest: string | null;
  readonly caches: string[];
  readonly startedAt: string | null;
  readonly served: number;
  /** of those, answered from the world of a target verified within the recheck window */
  readonly servedFromWorld: number;
  readonly refused: number;
  readonly narsServed: number;
  readonly narsCutOff: number;
  readonly verdictsCached: number;
  /** trust verdicts computed (verifyClosure ran) and reused from the verdict cache */
  readonly verdictsComputed: number;
  readonly verdictsReused: number;
  readonly lastRefusals: Refusal[];
}

const KEEP_EVENTS = 1000;

export function linesDigest(lines: readonly string[]): string {
  const h = createHash('sha256');
  for (const l of [...new Set(lines)].sort()) h.update(l).update('\n');
  return h.digest('hex');
}

function openDb(file: string, readonly: boolean): Database.Database {
  try {
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    return new Sqlite(file, { readonly, fileMustExist: readonly });
  } catch (err) {
    throw new BuildtraceError('DATABASE_ERROR', `cannot open ${file}: ${errorMessage(err)}`, { subject: file });
  }
}

type CounterName = 'served' | 'servedFromWorld' | 'refused' | 'narsServed' | 'narsCutOff' | 'verdictsComputed' | 'verdictsReused';

/** How long counts wait to be written together (StateDb.count). */
const COUNTER_FLUSH_MS = 25;

export class StateDb {
  private readonly db: Database.Database;
  /** Prepared once: a closure's worth of requests counts and looks up thousands of times. */
  private readonly statements = new Map<string, Database.Statement>();
  /** Hints this process has written (a new top-level's world repeats the closure's thousands). */
  private readonly hinted = new Map<string, string>();
  /** Counts not yet written (count) */
  private readonly pending = new Map<CounterName, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private st(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
  constructor(stateDir: string) {
    this.db = openDb(join(stateDir, STATE_DB_FILE), false);
    this.db.pragma('journal_mode = WAL');
    // a crash may lose the last counters or cached verdicts, never corrupt them; no fsync per request
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, drv TEXT NOT NULL, policy_digest TEXT NOT NULL, caches TEXT NOT NULL,
        verified INTEGER NOT NULL, traces TEXT NOT NULL, result TEXT NOT NULL, decided_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS hints (path TEXT PRIMARY KEY, drv TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, drv TEXT,
        codes TEXT NOT NULL, detail TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
    `);
  }

  static verdictKey(drv: string, policyDigest: string, caches: readonly string[]): string {
    return createHash('sha256')
      .update([drv, policyDigest, ...caches].join('\0'))
      .digest('hex');
  }

  cachedVerdict(key: string): CachedVerdict | undefined {
    const r = this.st('SELECT traces, result FROM verdicts WHERE key = ?').get(key) as { traces: string; result: string } | undefined;
    if (!r) return undefined;
    return { result: JSON.parse(r.result) as VerifyResult, traces: JSON.parse(r.traces) as TraceDigest[] };
  }

  storeVerdict(key: string, drv: string, policyDigest: string, caches: readonly string[], v: CachedVerdict): void {
    const tx = this.db.transaction(() => {
      this.st('INSERT OR REPLACE INTO verdicts (key, drv, policy_digest, caches, verified, traces, result, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        key,
        drv,
        policyDigest,
        JSON.stringify(caches),
        v.result.verified ? 1 : 0,
        JSON.stringify(v.traces),
        JSON.stringify(v.result),
        new Date().toISOString(),
      );
      this.writeHints(v.result);
    });
    tx();
  }

  /** The producer hints of a verdict that is not kept itself (StateDb.hints). */
  storeHints(result: VerifyResult): void {
    this.db.transaction(() => this.writeHints(result))();
  }

  private writeHints(result: VerifyResult): void {
    const hint = this.st('INSERT OR REPLACE INTO hints (path, drv) VALUES (?, ?)');
    for (const [path, w] of Object.entries(result.world)) {
      if (!w.producerDrv || this.hinted.get(path) === w.producerDrv) continue;
      hint.run(path, w.producerDrv);
      this.hinted.set(path, w.producerDrv);
    }
  }

  /** Producer hints (from verified worlds) for paths with this hash part. */
  hints(storeDir: string, hashPart: string): { path: string; drv: string }[] {
    return this.st('SELECT path, drv FROM hints WHERE path >= ? AND path < ?').all(`${storeDir}/${hashPart}-`, `${storeDir}/${hashPart}.`) as {
      path: string;
      drv: string;
    }[];
  }

  count(name: CounterName): void {
    this.pending.set(name, (this.pending.get(name) ?? 0) + 1);
    // one write for a burst of requests (Nix substitutes a closure path by path); `status` sees
    // them COUNTER_FLUSH_MS later, a crash loses at most that much counting
    this.flushTimer ??= setTimeout(() => this.flushCounters(), COUNTER_FLUSH_MS);
  }

  private flushCounters(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const add = this.st('INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET n = n + excluded.n');
    const rows = [...this.pending];
    this.pending.clear();
    this.db.transaction(() => {
      for (const [name, n] of rows) add.run(name, n);
    })();
  }

  refusal(path: string, drv: string | undefined, codes: readonly string[], detail: string): void {
    this.count('refused');
    this.st('INSERT INTO events (at, kind, path, drv, codes, detail) VALUES (?, ?, ?, ?, ?, ?)').run(
      new Date().toISOString(),
      'refused',
      path,
      drv ?? null,
      JSON.stringify([...new Set(codes)]),
      detail.slice(0, 4000),
    );
    this.st('DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?').run(KEEP_EVENTS);
  }

  setMeta(values: Record<string, string>): void {
    const st = this.st('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)');
    for (const [k, v] of Object.entries(values)) st.run(k, v);
  }

  close(): void {
    this.flushCounters();
    this.db.close();
  }
}

/** Reads the status of a substituter's state directory (read-only; the server may be running). */
export function readStatus(stateDir: string, last = 20): StatusReport {
  const db = openDb(join(stateDir, STATE_DB_FILE), true);
  try {
    const meta = new Map((db.prepare('SELECT k, v FROM meta').all() as { k: string; v: string }[]).map((r) => [r.k, r.v]));
    const counters = new Map((db.prepare('SELECT name, n FROM counters').all() as { name: string; n: number }[]).map((r) => [r.name, r.n]));
    const refusals = (
      db.prepare("SELECT at, path, drv, codes, detail FROM events WHERE kind = 'refused' ORDER BY id DESC LIMIT ?").all(last) as {
        at: string;
        path: string;
        drv: string | null;
        codes: string;
        detail: string;
      }[]
    ).map((r) => ({ ...r, codes: JSON.parse(r.codes) as string[] }));
    return {
      listen: meta.get('listen') ?? null,
      publicKey: meta.get('publicKey') ?? null,
      policy: meta.get('policy') ?? null,
      policyDigest: meta.get('policyDigest') ?? null,
      caches: meta.has('caches') ? (JSON.parse(meta.get('caches') as string) as string[]) : [],
      startedAt: meta.get('startedAt') ?? null,
      served: counters.get('served') ?? 0,
      servedFromWorld: counters.get('servedFromWorld') ?? 0,
      refused: counters.get('refused') ?? 0,
      narsServed: counters.get('narsServed') ?? 0,
      narsCutOff: counters.get('narsCutOff') ?? 0,
      verdictsComputed: counters.get('verdictsComputed') ?? 0,
      verdictsReused: counters.get('verdictsReused') ?? 0,
      verdictsCached: (db.prepare('SELECT count(*) AS n FROM verdicts').get() as { n: number }).n,
      lastRefusals: refusals,
    };
  } finally {
    db.close();
  }
}
