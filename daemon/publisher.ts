import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { appendLines, CacheError, type CacheBackend } from '../src/cache/backend.js';
import { errorMessage } from '../src/errors.js';
import { evidenceFromRow, evidenceToJson, type EvidenceDbRow } from '../src/verify/sources.js';
import type { TraceDb } from './trace-db.js';
import { buildTraceDoiKey, signBuildTrace, type BuildTraceSignature } from '../src/nix/build-trace.js';
import type { NixSecretKey } from '../src/nix/nix-key.js';

const execFileP = promisify(execFile);

export interface PublishTarget {
  readonly url: string;
  readonly backend: CacheBackend;
  readonly uploadOutputs: boolean;
  /** Also write Nix-native build-trace-v2 entries for content-addressed outputs. */
  readonly buildTraceV2?: boolean;
}

export interface CacheStatus {
  url: string;
  pending: number;
  failed: number;
  done: number;
  lastError: { at: string; message: string } | null;
  lastSuccessAt: string | null;
}

interface OutboxRow {
  id: number;
  cache: string;
  kind: 'trace' | 'evidence';
  ref_id: number;
  attempts: number;
}

const MAX_BACKOFF_MS = 10 * 60_000;

/** Exponential backoff with full jitter: the n-th failure waits up to 2^n seconds (capped). */
export function backoffMs(attempts: number): number {
  const cap = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts, 20));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/**
 * Drains the outbox: for each cache, outputs first (`nix copy --to`, so narinfo and NAR
 * land before any trace names them), then trace lines appended to `traces/<hash>` and
 * evidence to `buildtrace/keys/<fp>.jsonl`. Failures back off; 4xx other than
 * 408/409/412/425/429 are permanent and reported.
 */
export class Publisher {
  private readonly lastError = new Map<string, { at: string; message: string }>();
  private readonly lastSuccess = new Map<string, string>();
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly db: TraceDb,
    private readonly targets: readonly PublishTarget[],
    private readonly log: (m: string) => void,
    private readonly signingKey?: NixSecretKey,
    private readonly nix = 'nix',
  ) {
    db.caches = targets.map((t) => t.url);
  }

  /** Queues what exists but was never queued for a cache (a cache added to the config later). */
  backfill(): void {
    const now = new Date().toISOString();
    for (const t of this.targets) {
      this.db.db.prepare("INSERT OR IGNORE INTO outbox (cache, kind, ref_id, created_at) SELECT ?, 'trace', id, ? FROM traces").run(t.url, now);
      this.db.db.prepare("INSERT OR IGNORE INTO outbox (cache, kind, ref_id, created_at) SELECT ?, 'evidence', id, ? FROM evidence").run(t.url, now);
    }
  }

  start(): void {
    if (this.targets.length === 0) return;
    const tick = (): void => {
      if (this.stopped) return;
      this.kick();
      this.timer = setTimeout(tick, 1000);
      this.timer.unref();
    };
    tick();
  }

  kick(force = false): Promise<void> {
    if (this.targets.length === 0) return Promise.resolve();
    if (!this.running) {
      this.running = this.runOnce(force).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private due(force: boolean, cache: string): OutboxRow[] {
    return this.db.db
      .prepare<[string, number], OutboxRow>(
        "SELECT id, cache, kind, ref_id, attempts FROM outbox WHERE cache = ? AND state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT 2000",
      )
      .all(cache, force ? Number.MAX_SAFE_INTEGER : Date.now());
  }

  private async runOnce(force: boolean): Promise<void> {
    await Promise.all(this.targets.map((t) => this.publishTo(t, force)));
  }

  private markDone(ids: readonly number[]): void {
    const now = new Date().toISOString();
    const st = this.db.db.prepare("UPDATE outbox SET state = 'done', done_at = ?, last_error = NULL WHERE id = ?");
    this.db.db.transaction(() => {
      for (const id of ids) st.run(now, id);
    })();
  }

  private markFailed(rows: readonly OutboxRow[], err: unknown): void {
    const permanent = err instanceof CacheError && err.permanent;
    const msg = errorMessage(err);
    const st = this.db.db.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, state = ? WHERE id = ?');
    this.db.db.transaction(() => {
      for (const r of rows) st.run(Date.now() + backoffMs(r.attempts + 1), msg, permanent ? 'failed' : 'pending', r.id);
    })();
  }

  private async publishTo(t: PublishTarget, force: boolean): Promise<void> {
    const rows = this.due(force, t.url);
    if (rows.length === 0) return;
    const traceRows = rows.filter((r) => r.kind === 'trace');
    const evRows = rows.filter((r) => r.kind === 'evidence');
    try {
      if (t.uploadOutputs && traceRows.length > 0) {
        const paths = this.db.db
          .prepare(`SELECT DISTINCT path FROM outputs WHERE trace_id IN (${traceRows.map(() => '?').join(',')})`)
          .all(...traceRows.map((r) => r.ref_id)) as { path: string }[];
        try {
          // one attempt: the outbox's own backoff retries, and a dead cache must not hold the publisher
          await execFileP(
            this.nix,
            ['--extra-experimental-features', 'nix-command', 'copy', '--option', 'download-attempts', '1', '--option', 'connect-timeout', '10', '--to', t.url, ...paths.map((p) => p.path)],
            { maxBuffer: 64 << 20 },
          );
        } catch (err) {
          const lines = ((err as { stderr?: string }).stderr ?? errorMessage(err)).split('\n').map((l) => l.trim()).filter(Boolean);
          const why = lines.find((l) => l.startsWith('error:')) ?? lines[lines.length - 1] ?? 'failed';
          throw new CacheError(`nix copy --to ${t.url}: ${why.slice(0, 300)}`, false);
        }
      }
      // trace bundles, grouped per resolved derivation (one conditional append per object)
      const byHash = new Map<string, { ids: number[]; lines: string[] }>();
      const qTrace = this.db.db.prepare<[number], { rdrv_hash: string; bundle: string }>('SELECT rdrv_hash, bundle FROM traces WHERE id = ?');
      for (const r of traceRows) {
        const tr = qTrace.get(r.ref_id);
        if (!tr) {
          this.markDone([r.id]); // nothing left to publish
          continue;
        }
        const g = byHash.get(tr.rdrv_hash) ?? { ids: [], lines: [] };
        g.ids.push(r.id);
        g.lines.push(tr.bundle);
        byHash.set(tr.rdrv_hash, g);
      }
      const qEv = this.db.db.prepare<[number], EvidenceDbRow & { trace_id: number | null }>('SELECT * FROM evidence WHERE id = ?');
      const qHash = this.db.db.prepare<[number], { rdrv_hash: string }>('SELECT rdrv_hash FROM traces WHERE id = ?');
      const evByKey = new Map<string, { ids: number[]; lines: string[] }>();
      for (const r of evRows) {
        const e = qEv.get(r.ref_id);
        if (!e) {
          this.markDone([r.id]);
          continue;
        }
        const key = e.kind === 'key' ? `buildtrace/keys/${e.key_fp}.jsonl` : `buildtrace/trace-evidence/${qHash.get(e.trace_id ?? -1)?.rdrv_hash ?? 'unknown'}.jsonl`;
        const line = evidenceToJson(evidenceFromRow(e, ''));
        const g = evByKey.get(key) ?? { ids: [], lines: [] };
        g.ids.push(r.id);
        g.lines.push(line);
        evByKey.set(key, g);
      }
      if (t.buildTraceV2 && this.signingKey) await this.publishBuildTraces(t, traceRows.map((r) => r.ref_id), this.signingKey);
      const jobs = [...[...evByKey].map(([k, g]) => ({ key: k, ...g })), ...[...byHash].map(([h, g]) => ({ key: `traces/${h}`, ...g }))];
      const rowById = new Map(rows.map((r) => [r.id, r]));
      let failures = 0;
      for (let i = 0; i < jobs.length; i += 8) {
        await Promise.all(
          jobs.slice(i, i + 8).map(async (j) => {
            try {
              await appendLines(t.backend, j.key, j.lines);
              this.markDone(j.ids);
            } catch (err) {
              failures++;
              this.markFailed(j.ids.map((id) => rowById.get(id) as OutboxRow), err);
              this.noteError(t.url, err);
            }
          }),
        );
      }
      if (failures < jobs.length) this.lastSuccess.set(t.url, new Date().toISOString());
    } catch (err) {
      this.markFailed(rows, err);
      this.noteError(t.url, err);
    }
  }

  /**
   * build-trace-v2 entries for CA traces: one JSON object per (resolved drv, output); several
   * builders add their signatures to it (conditional write). A different outPath already
   * there is left alone: Nix substitutes one mapping per key, and our own traces record ours.
   */
  private async publishBuildTraces(t: PublishTarget, traceIds: readonly number[], key: NixSecretKey): Promise<void> {
    const q = this.db.db.prepare<[number], { rdrv_path: string; name: string; path: string }>(
      "SELECT t.rdrv_path, o.name, o.path FROM traces t JOIN outputs o ON o.trace_id = t.id WHERE t.id = ? AND t.kind = 'ca'",
    );
    for (const id of traceIds) {
      for (const row of q.all(id)) {
        const drvBase = row.rdrv_path.slice(row.rdrv_path.lastIndexOf('/') + 1);
        const outBase = row.path.slice(row.path.lastIndexOf('/') + 1);
        const sig = signBuildTrace(key, drvBase, row.name, outBase);
        const objKey = buildTraceDoiKey(drvBase, row.name);
        for (let attempt = 0; attempt < 20; attempt++) {
          const cur = await t.backend.get(objKey);
          let value: { outPath: string; signatures: BuildTraceSignature[] } = { outPath: outBase, signatures: [] };
          if (cur) {
            try {
              value = JSON.parse(cur.body.toString('utf8')) as typeof value;
            } catch {
              break; // not ours to repair
            }
            if (value.outPath !== outBase || value.signatures.some((s) => s.keyName === sig.keyName && s.sig === sig.sig)) break;
          }
          value = { outPath: value.outPath, signatures: [...(value.signatures ?? []), sig] };
          if (await t.backend.putIf(objKey, Buffer.from(JSON.stringify(value)), cur?.etag, 'application/json')) break;
        }
      }
    }
  }

  private noteError(url: string, err: unknown): void {
    const message = errorMessage(err);
    const prev = this.lastError.get(url);
    this.lastError.set(url, { at: new Date().toISOString(), message });
    if (prev?.message !== message) this.log(`trace-daemon: publishing to ${url}: ${message}`);
  }

  status(): CacheStatus[] {
    return this.targets.map((t) => {
      const counts = Object.fromEntries(
        (this.db.db.prepare('SELECT state, count(*) AS n FROM outbox WHERE cache = ? GROUP BY state').all(t.url) as { state: string; n: number }[]).map((r) => [r.state, r.n]),
      ) as Record<string, number>;
      return {
        url: t.url,
        pending: counts['pending'] ?? 0,
        failed: counts['failed'] ?? 0,
        done: counts['done'] ?? 0,
        lastError: this.lastError.get(t.url) ?? null,
        lastSuccessAt: this.lastSuccess.get(t.url) ?? null,
      };
    });
  }

  pendingCount(): number {
    return (this.db.db.prepare("SELECT count(*) AS n FROM outbox WHERE state = 'pending'").get() as { n: number }).n;
  }

  /**
   * `push --wait`: try everything pending now, ignoring backoff, until the outbox is
   * empty or every remaining row has failed once during this call.
   */
  async flush(): Promise<{ pending: number; failed: number; errors: { cache: string; error: string }[] }> {
    const started = Date.now();
    for (;;) {
      await this.running;
      await this.kick(true);
      const left = this.db.db
        .prepare<[], { cache: string; next_attempt_at: number; last_error: string | null; state: string }>("SELECT cache, next_attempt_at, last_error, state FROM outbox WHERE state = 'pending'")
        .all();
      const triedNow = left.filter((r) => r.last_error !== null && r.next_attempt_at > started);
      if (left.length === 0 || triedNow.length === left.length) {
        const failedRows = this.db.db.prepare<[], { cache: string; last_error: string | null }>("SELECT cache, last_error FROM outbox WHERE state = 'failed'").all();
        const errs = new Map<string, string>();
        for (const r of [...left, ...failedRows]) if (r.last_error) errs.set(r.cache, r.last_error);
        return { pending: left.length, failed: failedRows.length, errors: [...errs].map(([cache, error]) => ({ cache, error })) };
      }
    }
  }
}
