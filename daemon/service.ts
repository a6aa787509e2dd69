import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'chokidar';
import { basename } from 'node:path';
import { BuildtraceError, errorMessage } from '../src/errors.js';
import type { NixSecretKey } from '../src/nix/nix-key.js';
import { createBundle } from '../src/trace/bundle.js';
import { buildStatement, useLautProfile } from '../src/trace/statement.js';
import { castoreEntryBase64 } from '../src/nix/castore.js';
import { castoreNodeOfPath } from '../src/store/castore-tree.js';
import type { BuildRecord, Capturer, Captured, Resolved } from './capture.js';
import type { Spool } from './spool.js';
import type { NewTrace, TraceDb } from './trace-db.js';
import { evidenceRecord, type TeeProvider } from './tee-provider.js';
import { reportDataFor, traceAttestationPreimage } from '../src/tee/binding.js';

export interface ServiceStats {
  startedAt: string;
  traced: number;
  duplicates: number;
  rejected: number;
  skipped: number;
  transientErrors: number;
  /** Records left in the spool after an error nobody classified (retried at each scan). */
  unexpectedErrors: number;
  lastTraceAt: string | undefined;
  lastError: { at: string; message: string } | undefined;
}

/** Errors that say the record itself is bad: it is moved aside, never retried. */
const PERMANENT: ReadonlySet<string> = new Set([
  'SPOOL_RECORD_INVALID',
  'ATERM_INVALID',
  'DERIVATION_INVALID',
  'STORE_PATH_INVALID',
  'RESOLUTION_FAILED',
  'FILE_UNREADABLE',
  'JSON_INVALID',
  'HASH_INVALID',
]);

const RESCAN_MS = 30_000;
/**
 * A record that does not parse and was written less than this long ago is read again later
 * instead of being rejected: whoever copies records in without the hook's temp-name-and-rename
 * (a `cp`, a test) can be caught mid-write, and rejecting then loses that build's trace.
 */
const FRESH_RECORD_MS = 2_000;
/** Backoff after a failed batch: 1 s, doubling, at most a minute. */
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

/**
 * The capture pipeline: spool record -> resolved derivation -> statement ->
 * signed bundle -> one SQLite transaction -> spool record deleted.
 */
export class TraceService {
  readonly stats: ServiceStats = {
    startedAt: new Date().toISOString(),
    traced: 0,
    duplicates: 0,
    rejected: 0,
    skipped: 0,
    transientErrors: 0,
    unexpectedErrors: 0,
    lastTraceAt: undefined,
    lastError: undefined,
  };
  private readonly queue = new Set<string>();
  private running: Promise<void> | undefined;
  private watcher: FSWatcher | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private idleWaiters: (() => void)[] = [];
  /**
   * The one retry chain: after a failed batch nothing runs until this timer fires (or
   * `retryNow`), however many scans add names meanwhile.
   */
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_MIN_MS;
  /** A rescan for records left because they were still being written (see FRESH_RECORD_MS). */
  private freshTimer: NodeJS.Timeout | undefined;
  /** The error of the failing state we are in, if any: logged once on entry and once on recovery. */
  private failing: string | undefined;
  /** Records already logged for an unexpected error (logged once each). */
  private readonly unexpected = new Set<string>();
  /** Called after every commit that added traces (the publisher's doorbell). */
  onCommit: (() => void) | undefined;

  constructor(
    private readonly spool: Spool,
    private readonly capturer: Capturer,
    private readonly db: TraceDb,
    private readonly key: NixSecretKey,
    private readonly versions: Readonly<Record<string, string>>,
    private readonly batchSize: number,
    private readonly log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`),
    /** Attest every statement with this provider (tee.perTrace). */
    private readonly perTrace?: TeeProvider,
  ) {}

  get pending(): number {
    return this.queue.size;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  async start(): Promise<void> {
    this.spool.ensure();
    this.watcher = watch(this.spool.dir, {
      depth: 0,
      ignoreInitial: true,
      // trace-hook writes ".tmp-*" and renames: ignore the temp names, never wait for writes.
      ignored: (p: string) => basename(p).startsWith('.') || basename(p) === 'rejected',
      followSymlinks: false,
      atomic: false,
    });
    // The watcher is a doorbell: a burst of events becomes one directory scan.
    this.watcher.on('add', () => this.scanSoon());
    this.watcher.on('error', (err: unknown) => this.noteError(`spool watcher: ${errorMessage(err)}`));
    await new Promise<void>((resolve) => this.watcher?.once('ready', () => resolve()));
    // The watcher is a latency optimisation; durability comes from scanning.
    this.scan();
    const t = setInterval(() => this.scan(), RESCAN_MS);
    t.unref();
    this.timers.push(t);
  }

  private scanScheduled = false;

  private scanSoon(): void {
    if (this.scanScheduled || this.stopping) return;
    this.scanScheduled = true;
    setTimeout(() => {
      this.scanScheduled = false;
      this.scan();
    }, 20).unref();
  }

  scan(): void {
    try {
      for (const n of this.spool.list()) this.queue.add(n);
    } catch (err) {
      this.noteError(`reading the spool ${this.spool.dir}: ${errorMessage(err)}`);
    }
    this.kick();
  }

  /** A scan that also ends a backoff wait: `push` asks for work now. */
  retryNow(): void {
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.scan();
  }

  /** Whether batches are failing and the next try waits for the backoff timer. */
  get backingOff(): boolean {
    return this.retryTimer !== undefined;
  }

  /** Resolves when no batch is running and none can run now (the queue is empty, or backing off). */
  idle(): Promise<void> {
    if (this.settled()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settled(): boolean {
    return !this.running && this.freshTimer === undefined && (this.queue.size === 0 || this.retryTimer !== undefined || this.stopping);
  }

  private kick(): void {
    if (this.running || this.stopping || this.queue.size === 0 || this.retryTimer !== undefined) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (this.settled()) {
        for (const w of this.idleWaiters.splice(0)) w();
      } else this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (this.queue.size > 0 && !this.stopping) {
      const names = [...this.queue].slice(0, this.batchSize);
      for (const n of names) this.queue.delete(n);
      try {
        await this.processBatch(names);
      } catch (err) {
        // Store or database trouble (a full disk): every record stays in the spool and in the
        // queue, and one timer retries, backing off; scans meanwhile only add names.
        for (const n of names) this.queue.add(n);
        this.db.noteError(err);
        this.stats.transientErrors++;
        const message = errorMessage(err);
        this.stats.lastError = { at: new Date().toISOString(), message: `batch of ${names.length} records left in the spool: ${message}` };
        if (this.failing !== message) {
          this.failing = message;
          this.log(`trace-daemon: batch of ${names.length} records left in the spool, retrying with backoff (up to ${RETRY_MAX_MS / 1000} s): ${message}`);
        }
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.retryDelayMs);
        this.retryTimer.unref();
        this.retryDelayMs = Math.min(RETRY_MAX_MS, this.retryDelayMs * 2);
        return;
      }
      if (this.failing !== undefined) {
        this.log(`trace-daemon: batches commit again (after ${this.stats.transientErrors} failed attempts since start)`);
        this.failing = undefined;
      }
      this.retryDelayMs = RETRY_MIN_MS;
      // Let the API answer between batches.
      await new Promise((r) => setImmediate(r));
    }
  }

  private noteError(message: string): void {
    this.stats.lastError = { at: new Date().toISOString(), message };
    this.log(`trace-daemon: ${message}`);
  }

  private reject(name: string, err: unknown): void {
    const msg = errorMessage(err);
    this.spool.reject(name, msg);
    this.stats.rejected++;
    this.noteError(`rejected spool record ${name}: ${msg}`);
  }

  /**
   * A record's resolution, or undefined when it was already consumed, rejected or skipped.
   * Throws BuildtraceErrors the whole batch must wait for (the store, the database).
   */
  private async resolveRecord(name: string): Promise<Resolved | undefined> {
    let rec: BuildRecord | undefined;
    try {
      rec = this.spool.read(name);
      // without Nix's database: fetch the realisations resolution needs (a store failure is
      // not the record's fault: it propagates and the batch stays in the spool)
      await this.capturer.prepare(rec);
      return this.capturer.resolve(rec);
    } catch (err) {
      if (!(err instanceof BuildtraceError)) throw err;
      if (err.code === 'NOT_FOUND') return undefined; // already consumed
      // the record itself did not read or parse (rec unset): maybe it is still being written
      if (rec === undefined && PERMANENT.has(err.code) && this.spool.modifiedWithin(name, FRESH_RECORD_MS)) {
        this.rescanLater();
        return undefined;
      }
      if (PERMANENT.has(err.code)) {
        this.reject(name, err);
        return undefined;
      }
      throw err;
    }
  }

  /** One rescan once the grace for records still being written is over; `idle` waits for it. */
  private rescanLater(): void {
    if (this.freshTimer !== undefined || this.stopping) return;
    this.freshTimer = setTimeout(() => {
      this.freshTimer = undefined;
      this.scan();
      if (this.settled()) for (const w of this.idleWaiters.splice(0)) w();
    }, FRESH_RECORD_MS);
    this.freshTimer.unref();
  }

  /**
   * A bug or something unforeseen about one record: it stays in the spool (the next scan
   * tries it again), is counted and shown in status, and does not hold up the others.
   */
  private leaveUnexpected(name: string, err: unknown): void {
    this.stats.unexpectedErrors++;
    this.stats.lastError = { at: new Date().toISOString(), message: `spool record ${name} left in the spool: ${errorMessage(err)}` };
    if (!this.unexpected.has(name)) {
      this.unexpected.add(name);
      this.log(`trace-daemon: unexpected error on spool record ${name}, left in the spool: ${errorMessage(err)}`);
    }
  }

  async processBatch(names: readonly string[]): Promise<void> {
    const resolved: { name: string; r: Resolved }[] = [];
    const aliasOnly: { name: string; r: Resolved }[] = [];
    for (const name of names) {
      let r: Resolved | undefined;
      try {
        r = await this.resolveRecord(name);
      } catch (err) {
        if (err instanceof BuildtraceError) throw err;
        this.leaveUnexpected(name, err);
        continue;
      }
      if (r === undefined) continue;
      if (this.db.has(r.rdrvHash, this.key.publicKey.fingerprint)) aliasOnly.push({ name, r });
      else resolved.push({ name, r });
    }
    const captured = await this.capturer.capture(resolved.map((x) => x.r));
    const traces: NewTrace[] = [];
    const done: string[] = [];
    for (const { name, r } of resolved) {
      const c = captured.get(r);
      if (c === undefined || c instanceof BuildtraceError) {
        this.reject(name, c ?? new Error('not captured'));
        continue;
      }
      traces.push(await this.sign(c));
      done.push(name);
    }
    if (this.perTrace) {
      for (const [i, t] of traces.entries()) traces[i] = await this.attestTrace(t, this.perTrace);
    }
    const fresh = this.db.insertAll(
      traces,
      aliasOnly.map(({ r }) => ({ drvPath: r.record.drv, rdrvHash: r.rdrvHash, keyFp: this.key.publicKey.fingerprint })),
    );
    // Only now, after the commit, do records leave the spool.
    for (const n of done) this.spool.remove(n);
    for (const { name } of aliasOnly) this.spool.remove(name);
    const added = fresh.filter(Boolean).length;
    this.stats.traced += added;
    this.stats.duplicates += fresh.length - added + aliasOnly.length;
    if (added > 0) {
      this.stats.lastTraceAt = new Date().toISOString();
      this.onCommit?.();
    }
  }

  private async attestTrace(t: NewTrace, provider: TeeProvider): Promise<NewTrace> {
    const preimage = traceAttestationPreimage(t.statement);
    const reportData = reportDataFor(preimage);
    const ev = await provider.attest(reportData);
    return { ...t, evidence: evidenceRecord('trace', t.keyFp, provider, ev, preimage, reportData) };
  }

  private async sign(c: Captured): Promise<NewTrace> {
    const sha = (p: string): { sha256: string; narSize: number } => {
      const i = c.outputInfo.get(p) ?? c.inputInfo.get(p);
      if (i?.narHash.algo !== 'sha256') throw new BuildtraceError('STORE_QUERY_FAILED', `${p}: no SHA-256 NAR hash`);
      return { sha256: Buffer.from(i.narHash.bytes).toString('hex'), narSize: i.narSize };
    };
    // laut's #ca profile only where the rdrv pins every input's content (all inputs CA or fixed)
    let laut = useLautProfile(
      c.kind,
      c.inputs.every((p) => c.inputInfo.get(p)?.ca !== undefined),
    );
    let castore: string[] = [];
    if (laut) {
      try {
        castore = await Promise.all(c.outputs.map(async (o) => castoreEntryBase64(await castoreNodeOfPath(o.path))));
      } catch (err) {
        // an output tree we cannot walk still gets a trace: our build type needs no castore entry
        this.noteError(`${c.rdrvPath}: no castore entry (${errorMessage(err)}); traced with our build type`);
        laut = false;
      }
    }
    const outputs = c.outputs.map((o, i) => ({
      name: o.name,
      path: o.path,
      declared: o.declared,
      ...sha(o.path),
      ...(laut ? { castoreEntry: castore[i] as string } : {}),
    }));
    const inputs = c.inputs.map((p) => ({ path: p, ...sha(p) }));
    const invocationId = randomBytes(16).toString('hex');
    const createdAt = new Date().toISOString();
    const statement = Buffer.from(
      JSON.stringify(
        buildStatement({
          kind: c.kind,
          lautProfile: laut,
          resolvedInputHash: c.rdrvHash,
          drvName: c.drvName,
          outputs,
          inputs: laut ? [] : inputs,
          keyFingerprint: this.key.publicKey.fingerprint,
          versions: this.versions,
          invocationId,
          finishedOn: createdAt,
        }),
      ),
      'utf8',
    );
    return {
      drvPath: c.record.drv,
      rdrvPath: c.rdrvPath,
      rdrvHash: c.rdrvHash,
      drvName: c.drvName,
      kind: c.kind,
      keyName: this.key.name,
      keyFp: this.key.publicKey.fingerprint,
      invocationId,
      statement,
      bundle: createBundle(statement, this.key, laut ? 'ed25519ph' : 'ed25519'),
      createdAt,
      outputs: outputs.map((o) => ({ name: o.name, path: o.path, narHash: o.sha256, narSize: o.narSize })),
      inputs: inputs.map((i) => ({ path: i.path, narHash: i.sha256, narSize: i.narSize })),
    };
  }

  /** Stops taking work, finishes the batch in progress. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.freshTimer !== undefined) clearTimeout(this.freshTimer);
    this.freshTimer = undefined;
    await this.watcher?.close();
    await this.running;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
