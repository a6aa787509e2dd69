import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { appendLines, CacheError, preconditionsChecked, type CacheBackend } from '../src/cache/backend.js';
import { BuildtraceError, errorMessage } from '../src/errors.js';
import { evidenceFromRow, evidenceToJson } from '../src/verify/sources.js';
import type { OutboxRow, TraceDb } from './trace-db.js';
import { buildTraceDoiKey, signBuildTrace } from '../src/nix/build-trace.js';
import { addBuildTraceSignature } from '../src/cache/build-trace-entry.js';
import type { NixSecretKey } from '../src/nix/nix-key.js';

const execFileP = promisify(execFile);

export interface PublishTarget {
  readonly url: string;
  readonly backend: CacheBackend;
  readonly uploadOutputs: boolean;
  /** Also write Nix-native build-trace-v2 entries for content-addressed outputs. */
  readonly buildTraceV2?: boolean;
}

/** One cache's line in `status` (also the JSON `caches[]` field). */
export interface CacheStatus {
  url: string;
  pending: number;
  failed: number;
  done: number;
  lastError: { at: string; message: string } | null;
  lastSuccessAt: string | null;
  /** Whether the cache refuses a stale conditional write; `ignored`: one publisher at a time only. */
  preconditions: 'checked' | 'ignored' | 'unknown';
  /** Objects whose last write failed (too big, malformed, conflicting): each holds up only its own rows. */
  failingObjects: { key: string; at: string; message: string }[];
}

/** How many failing objects `status` lists per cache (the count is always exact). */
const MAX_FAILING_OBJECTS_SHOWN = 20;

const MAX_BACKOFF_MS = 10 * 60_000;

/** Exponential backoff with full jitter: the n-th failure waits up to 2^n seconds (capped). */
function backoffMs(attempts: number): number {
  const cap = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts, 20));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/**
 * Why a publication failed, which decides what happens to its outbox rows:
 * `transient` rows are retried with backoff; `permanent` ones (most 4xx: credentials,
 * permissions, a bad URL) wait for `trace-daemon retry` after the cause is fixed. S3's
 * RequestTimeTooSkewed (a 403) is a wrong clock, which NTP fixes without anyone asking: transient.
 */
function failureClass(err: unknown): 'transient' | 'permanent' {
  if (!(err instanceof CacheError) || !err.permanent) return 'transient';
  return /RequestTimeTooSkewed/.test(err.message) ? 'transient' : 'permanent';
}

/**
 * Whether a failure is the cache's (unreachable, 5xx, timeouts: stop this round, back off the
 * cache) or one object's (too big, not our format, conflicting writes, a 4xx for that key): the
 * latter holds up only that object's rows, each with its own backoff, and the round goes on.
 */
function stopsRound(err: unknown): boolean {
  if (err instanceof CacheError) return !err.permanent && err.reason === undefined && !/conflicting writes/.test(err.message);
  if (err instanceof BuildtraceError && err.code === 'LIMIT_EXCEEDED') return false;
  return true;
}

/** One cache's worker: at most one round in flight, and one backoff after a failed round. */
interface Worker {
  readonly target: PublishTarget;
  running: Promise<RoundResult> | undefined;
  /** No automatic round before this (ms since the epoch); forced rounds ignore it. */
  pausedUntil: number;
  failedRounds: number;
}

interface RoundResult {
  /** Rows this round looked at. */
  rows: number;
  /** Rows this round published. */
  done: number;
  /** Whether something failed. */
  failed: boolean;
  /** Whether the cache itself failed (the round stopped; the cache backs off). */
  stalled: boolean;
}

/**
 * Drains the outbox, each cache on its own worker so a slow or dead cache never holds up
 * another: outputs first (`nix copy --to`, so narinfo and NAR land before any trace names
 * them), then trace lines appended to `traces/<hash>` and evidence to
 * `buildtrace/keys/<fp>.jsonl`. A transient failure ends the round and pauses that cache
 * with backoff; permanent ones are marked failed (see `failureClass`).
 */
export class Publisher {
  private readonly lastError = new Map<string, { at: string; message: string }>();
  private readonly lastSuccess = new Map<string, string>();
  /** Caches whose last round failed: logged once when they start failing and once when they recover. */
  private readonly failing = new Set<string>();
  /** Per cache: does it refuse a stale conditional write (probed once, before the first append)? */
  private readonly preconditions = new Map<string, boolean>();
  /** Per cache: objects whose last write failed, until one succeeds. */
  private readonly failingObjects = new Map<string, Map<string, { at: string; message: string }>>();
  private readonly workers: Worker[];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly db: TraceDb,
    targets: readonly PublishTarget[],
    private readonly log: (m: string) => void,
    private readonly signingKey?: NixSecretKey,
    private readonly nix = 'nix',
  ) {
    db.caches = targets.map((t) => t.url);
    this.workers = targets.map((target) => ({ target, running: undefined, pausedUntil: 0, failedRounds: 0 }));
  }

  /** Queues what exists but was never queued for a cache (a cache added to the config later). */
  backfill(): void {
    for (const w of this.workers) this.db.backfillOutbox(w.target.url);
  }

  start(): void {
    if (this.workers.length === 0) return;
    const tick = (): void => {
      if (this.stopped) return;
      void this.kick();
      this.timer = setTimeout(tick, 1000);
      this.timer.unref();
    };
    tick();
  }

  /** Starts a round on every cache that is not busy (or paused, unless forced). Never rejects. */
  kick(force = false): Promise<void> {
    return Promise.all(this.workers.map((w) => this.kickOne(w, force))).then(() => undefined);
  }

  private kickOne(w: Worker, force: boolean): Promise<RoundResult> {
    if (w.running) return w.running;
    if (this.stopped || (!force && Date.now() < w.pausedUntil)) return Promise.resolve({ rows: 0, done: 0, failed: false, stalled: false });
    w.running = this.publishTo(w.target, force)
      .catch((err: unknown): RoundResult => {
        // the database itself failed (full disk, corrupt): the rows stay pending
        this.db.noteError(err);
        this.noteError(w.target.url, err);
        return { rows: 0, done: 0, failed: true, stalled: true };
      })
      .then((r) => {
        if (r.stalled) {
          w.failedRounds++;
          w.pausedUntil = Date.now() + backoffMs(w.failedRounds);
        } else if (r.done > 0) {
          if (this.failing.delete(w.target.url)) this.log(`trace-daemon: publishing to ${w.target.url}: working again`);
          w.failedRounds = 0;
          w.pausedUntil = 0;
        }
        return r;
      })
      .finally(() => {
        w.running = undefined;
      });
    return w.running;
  }

  /**
   * Stops starting rounds and waits for those in flight, at most `graceMs`: a cache that
   * does not answer must not hold up a shutdown (its rows stay pending). Returns whether
   * every round finished.
   */
  async stop(graceMs = 5_000): Promise<boolean> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.all(this.workers.map((w) => w.running)).then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    return finished;
  }

  private markFailed(rows: readonly OutboxRow[], err: unknown): void {
    const permanent = failureClass(err) === 'permanent';
    this.db.markFailed(rows, errorMessage(err), permanent, (r) => Date.now() + backoffMs(r.attempts + 1));
  }

  private async publishTo(t: PublishTarget, force: boolean): Promise<RoundResult> {
    this.db.checkFiles();
    const rows = this.db.dueRows(t.url, force ? Number.MAX_SAFE_INTEGER : Date.now());
    if (rows.length === 0) return { rows: 0, done: 0, failed: false, stalled: false };
    const traceRows = rows.filter((r) => r.kind === 'trace');
    const evRows = rows.filter((r) => r.kind === 'evidence');
    try {
      if (t.uploadOutputs && traceRows.length > 0) {
        const paths = this.db.outputPaths(traceRows.map((r) => r.ref_id));
        try {
          // one attempt: the outbox's own backoff retries, and a dead cache must not hold the publisher
          await execFileP(
            this.nix,
            [
              '--extra-experimental-features',
              'nix-command',
              'copy',
              '--option',
              'download-attempts',
              '1',
              '--option',
              'connect-timeout',
              '10',
              '--to',
              t.url,
              ...paths,
            ],
            { maxBuffer: 64 << 20 },
          );
        } catch (err) {
          const lines = ((err as { stderr?: string }).stderr ?? errorMessage(err))
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean);
          const why = lines.find((l) => l.startsWith('error:')) ?? lines[lines.length - 1] ?? 'failed';
          throw new CacheError(`nix copy --to ${t.url}: ${why.slice(0, 300)}`, false);
        }
      }
      // trace bundles, grouped per resolved derivation (one conditional append per object)
      const byHash = new Map<string, { ids: number[]; lines: string[] }>();
      for (const r of traceRows) {
        const tr = this.db.traceBundle(r.ref_id);
        if (!tr) {
          this.db.markDone([r.id]); // nothing left to publish
          continue;
        }
        const g = byHash.get(tr.rdrv_hash) ?? { ids: [], lines: [] };
        g.ids.push(r.id);
        g.lines.push(tr.bundle);
        byHash.set(tr.rdrv_hash, g);
      }
      const evByKey = new Map<string, { ids: number[]; lines: string[] }>();
      for (const r of evRows) {
        const e = this.db.evidenceRow(r.ref_id);
        if (!e) {
          this.db.markDone([r.id]);
          continue;
        }
        const key =
          e.kind === 'key' ? `buildtrace/keys/${e.key_fp}.jsonl` : `buildtrace/trace-evidence/${this.db.rdrvHashOf(e.trace_id ?? -1) ?? 'unknown'}.jsonl`;
        const line = evidenceToJson(evidenceFromRow(e, ''));
        const g = evByKey.get(key) ?? { ids: [], lines: [] };
        g.ids.push(r.id);
        g.lines.push(line);
        evByKey.set(key, g);
      }
      // a trace whose .doi entry could not be written stays pending (or failed), with the
      // entry's error: a dropped build-trace-v2 signature shows in status and push --wait
      const doiFailed =
        t.buildTraceV2 && this.signingKey
          ? await this.publishBuildTraces(
              t,
              traceRows.map((r) => r.ref_id),
              this.signingKey,
            )
          : new Map<number, unknown>();
      // Key attestations go first, and traces wait while one fails: a consumer who admits keys
      // by their attestation must find it by the time it finds the key's first trace.
      const evJobs = [...evByKey].map(([k, g]) => ({ key: k, ...g }));
      const traceJobs = [...byHash].map(([h, g]) => ({ key: `traces/${h}`, ...g }));
      if (evJobs.length + traceJobs.length > 0) await this.probePreconditions(t);
      const rowById = new Map(rows.map((r) => [r.id, r]));
      let failures = 0;
      let done = 0;
      let transient = false;
      const jobs: typeof evJobs = [];
      for (const list of [evJobs, traceJobs]) {
        if (list === traceJobs && failures > 0) {
          this.markFailed(
            list.flatMap((j) => j.ids.map((id) => rowById.get(id) as OutboxRow)),
            new Error('waiting for the key attestation to be published first'),
          );
          break;
        }
        jobs.push(...list);
        for (let i = 0; i < list.length && !transient; i += 8) {
          await Promise.all(
            list.slice(i, i + 8).map(async (j) => {
              try {
                await appendLines(t.backend, j.key, j.lines);
                this.objectOk(t.url, j.key);
                const held = j.ids.map((id) => rowById.get(id) as OutboxRow).filter((r) => r.kind === 'trace' && doiFailed.has(r.ref_id));
                for (const r of held) {
                  failures++;
                  this.markFailed([r], doiFailed.get(r.ref_id));
                }
                const ok = j.ids.filter((id) => !held.some((r) => r.id === id));
                this.db.markDone(ok);
                done += ok.length;
              } catch (err) {
                failures++;
                // an unreachable cache: stop this round, the rest waits for the backoff;
                // one bad object holds up only its own rows
                if (stopsRound(err)) transient = true;
                else this.objectFailed(t.url, j.key, err);
                this.markFailed(
                  j.ids.map((id) => rowById.get(id) as OutboxRow),
                  err,
                );
                this.noteError(t.url, err);
              }
            }),
          );
        }
      }
      if (done > 0) this.lastSuccess.set(t.url, new Date().toISOString());
      return { rows: rows.length, done, failed: failures > 0, stalled: transient };
    } catch (err) {
      this.markFailed(rows, err);
      this.noteError(t.url, err);
      return { rows: rows.length, done: 0, failed: true, stalled: true };
    }
  }

  /**
   * build-trace-v2 entries for CA traces: one JSON object per (resolved drv, output); several
   * builders add their signatures to it (conditional write). A different outPath already
   * there is left alone: Nix substitutes one mapping per key, and our own traces record ours.
   * Each entry is read bounded and parsed defensively; one that fails (too big, not an entry,
   * the cache's error) fails only the traces it belongs to: returned per trace id.
   */
  private async publishBuildTraces(t: PublishTarget, traceIds: readonly number[], key: NixSecretKey): Promise<Map<number, unknown>> {
    const failed = new Map<number, unknown>();
    for (const id of traceIds) {
      for (const row of this.db.caOutputs(id)) {
        const drvBase = row.rdrv_path.slice(row.rdrv_path.lastIndexOf('/') + 1);
        const outBase = row.path.slice(row.path.lastIndexOf('/') + 1);
        const objKey = buildTraceDoiKey(drvBase, row.name);
        try {
          await addBuildTraceSignature(t.backend, objKey, outBase, signBuildTrace(key, drvBase, row.name, outBase));
          this.objectOk(t.url, objKey);
        } catch (err) {
          failed.set(id, err);
          if (stopsRound(err)) throw err;
          this.objectFailed(t.url, objKey, err);
          this.noteError(t.url, err);
        }
      }
    }
    return failed;
  }

  private objectFailed(url: string, key: string, err: unknown): void {
    const m = this.failingObjects.get(url) ?? new Map<string, { at: string; message: string }>();
    m.set(key, { at: new Date().toISOString(), message: errorMessage(err) });
    this.failingObjects.set(url, m);
  }

  private objectOk(url: string, key: string): void {
    this.failingObjects.get(url)?.delete(key);
  }

  /**
   * Once per cache: a server that accepts a write under a stale If-Match (plain nginx WebDAV,
   * s3rver) lets two publishers appending at once lose a line. Publishing goes on (one
   * publisher per cache is safe); the operator is told once, and `status` shows it.
   */
  private async probePreconditions(t: PublishTarget): Promise<void> {
    if (this.preconditions.has(t.url)) return;
    let checked: boolean;
    try {
      checked = await preconditionsChecked(t.backend);
    } catch {
      return; // the appends will meet the same trouble and report it; probe again next round
    }
    this.preconditions.set(t.url, checked);
    if (!checked)
      this.log(
        `trace-daemon: ${t.url} accepts writes under a stale If-Match: with several publishers on this cache a trace line can be lost; use one publisher per cache, or a server that checks preconditions (S3, nginx with the Lua lines in README)`,
      );
  }

  private noteError(url: string, err: unknown): void {
    const message = errorMessage(err);
    this.lastError.set(url, { at: new Date().toISOString(), message });
    // one line when a cache starts failing, not one per object or attempt (status has the latest)
    if (!this.failing.has(url)) {
      this.failing.add(url);
      this.log(`trace-daemon: publishing to ${url} failing, backing off: ${message}`);
    }
  }

  status(): CacheStatus[] {
    return this.workers.map(({ target: t }) => ({
      url: t.url,
      ...this.db.outboxCounts(t.url),
      lastError: this.lastError.get(t.url) ?? null,
      lastSuccessAt: this.lastSuccess.get(t.url) ?? null,
      preconditions: !this.preconditions.has(t.url) ? 'unknown' : this.preconditions.get(t.url) ? 'checked' : 'ignored',
      failingObjects: [...(this.failingObjects.get(t.url) ?? [])].slice(0, MAX_FAILING_OBJECTS_SHOWN).map(([key, e]) => ({ key, ...e })),
    }));
  }

  pendingCount(): number {
    return this.db.pendingRows().length;
  }

  /** The configured cache URLs. */
  get urls(): string[] {
    return this.workers.map((w) => w.target.url);
  }

  /**
   * `trace-daemon retry`: puts the failed rows of one cache (or all) back in the queue and
   * starts publishing them now.
   */
  retry(cache?: string): number {
    const n = this.db.requeueFailed(cache);
    for (const w of this.workers) {
      if (cache === undefined || w.target.url === cache) {
        w.pausedUntil = 0;
        void this.kickOne(w, true);
      }
    }
    return n;
  }

  /**
   * `push --wait`: each cache, on its own, tries everything pending now (ignoring backoff)
   * until it has nothing left or a round fails; a slow cache makes this as slow as its
   * timeouts, never slower than one failed round.
   */
  async flush(): Promise<{ pending: number; failed: number; errors: { cache: string; error: string }[] }> {
    await Promise.all(
      this.workers.map(async (w) => {
        await w.running;
        // until nothing is left, the cache stalls, or a round publishes nothing new (only
        // objects that keep failing are left: they are reported, not retried in a loop)
        for (;;) {
          const r = await this.kickOne(w, true);
          if (r.stalled || r.rows === 0 || r.done === 0) return;
        }
      }),
    );
    const left = this.db.pendingRows();
    const failedRows = this.db.failedRows();
    const errs = new Map<string, string>();
    for (const r of [...left, ...failedRows]) if (r.last_error) errs.set(r.cache, r.last_error);
    for (const w of this.workers) {
      const e = this.lastError.get(w.target.url);
      if (!errs.has(w.target.url) && e && left.some((r) => r.cache === w.target.url)) errs.set(w.target.url, e.message);
    }
    return { pending: left.length, failed: failedRows.length, errors: [...errs].map(([cache, error]) => ({ cache, error })) };
  }
}
