import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BuildtraceError } from '../errors.js';
import { addEd25519Tally, type Ed25519Tally } from '../nix/ed25519.js';
import type { NixPublicKey } from '../nix/nix-key.js';
import type { BundleCheck } from '../trace/bundle.js';
import type { WorkerResult } from './bundle-worker.js';

/**
 * When trace-verify checks bundles on worker threads: `BUILDTRACE_POOL=always|never` (tests run
 * every verify suite both ways and require identical results), else from this many
 * derivations on (`BUILDTRACE_POOL_MIN`, default 500; `never` also disables it). Undefined: never.
 */
export function poolThreshold(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const mode = env['BUILDTRACE_POOL'];
  if (mode === 'always') return 0;
  if (mode === 'never') return undefined;
  if (mode !== undefined && mode !== 'auto') throw new BuildtraceError('USAGE', `BUILDTRACE_POOL must be always, never or auto, not ${JSON.stringify(mode)}`);
  const min = env['BUILDTRACE_POOL_MIN'];
  if (min === 'never') return undefined;
  if (min === undefined) return 500;
  const n = Number(min);
  if (!Number.isInteger(n) || n < 0) throw new BuildtraceError('USAGE', `BUILDTRACE_POOL_MIN must be a count or never, not ${JSON.stringify(min)}`);
  return n;
}

/**
 * Bundle checks on worker threads, batched: over a large closure, parsing and Ed25519
 * verification are most of the work, and they are independent per bundle. The result is the
 * inline check's, statement bytes included for the keys in `bytesFor` (those whose identity
 * requires per-trace evidence, which binds the exact bytes; others need only the parsed claim).
 */
export class BundlePool {
  private readonly workers: Worker[];
  private readonly byFp: Map<string, NixPublicKey>;
  private queue: { line: string; resolve: (c: BundleCheck) => void; reject: (e: Error) => void }[] = [];
  private readonly waiting = new Map<number, { resolve: (c: BundleCheck) => void; reject: (e: Error) => void }[]>();
  private closing = false;
  private failed: Error | undefined;
  private nextId = 0;
  private rr = 0;
  private scheduled = false;

  // A core stays with the main thread, which reads, resolves and fetches while the workers
  // check (on 2 cores, 10,041 derivations: 1.33 s with one worker, 1.41-1.50 s with two).
  constructor(keys: readonly NixPublicKey[], size = Math.max(1, availableParallelism() - 1), bytesFor: ReadonlySet<string> = new Set()) {
    this.byFp = new Map(keys.map((k) => [k.fingerprint, k]));
    const data = { keys: keys.map((k) => ({ name: k.name, raw: k.raw })), bytesFor: [...bytesFor] };
    this.workers = Array.from({ length: size }, () => {
      // a larger young generation: each bundle check leaves short-lived garbage only
      const w = new Worker(new URL('./bundle-worker.js', import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 48 } });
      w.on('message', (m: { id: number; results: WorkerResult[]; engines: Ed25519Tally }) => {
        addEd25519Tally(m.engines);
        const cbs = this.waiting.get(m.id) ?? [];
        this.waiting.delete(m.id);
        m.results.forEach((r, i) => {
          const key = r.ok ? this.byFp.get(r.keyFingerprint) : undefined;
          cbs[i]?.resolve(
            r.ok && key
              ? {
                  ok: true,
                  value: { key, statement: r.statement, statementBytes: r.statementBytes ? Buffer.from(r.statementBytes) : Buffer.alloc(0), scheme: r.scheme },
                }
              : r.ok
                ? { ok: false, reason: 'key-not-admitted', detail: 'unknown key' }
                : r,
          );
        });
      });
      // a worker that dies must fail the verification, not leave it waiting forever
      const die = (why: string): void => {
        if (this.closing) return;
        this.failed = new BuildtraceError('INTERNAL', `a bundle-checking worker stopped: ${why}`);
        for (const batch of this.waiting.values()) for (const b of batch) b.reject(this.failed);
        this.waiting.clear();
        for (const b of this.queue.splice(0)) b.reject(this.failed);
      };
      w.on('error', (err: Error) => die(err.message));
      w.on('exit', (code: number) => die(`exit code ${code}`));
      return w;
    });
  }

  check(line: string): Promise<BundleCheck> {
    return new Promise((resolve, reject) => {
      if (this.failed) {
        reject(this.failed);
        return;
      }
      this.queue.push({ line, resolve, reject });
      if (this.queue.length >= 64) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 64);
      const id = this.nextId++;
      this.waiting.set(id, batch);
      (this.workers[this.rr++ % this.workers.length] as Worker).postMessage({ id, lines: batch.map((b) => b.line) });
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
