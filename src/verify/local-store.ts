import { Worker } from 'node:worker_threads';
import type { PathInfo } from '../../daemon/store-info.js';
import { BuildtraceError } from '../errors.js';
import type { LocalStoreReply } from './local-store-worker.js';

/**
 * The local Nix database for trace-verify's last mile, read on a thread of its own: the
 * checks are done by then and the other core is free, so the database answers for the
 * closure's paths while the main thread decides the verdict and reads the caches' narinfos.
 * The same queries as the daemon's (NixDbStoreInfo), the same errors.
 */
export class LocalStoreReader {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (m: Map<string, PathInfo>) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private early: { readonly paths: ReadonlySet<string>; readonly infos: Promise<Map<string, PathInfo>> } | undefined;
  private stopped: Error | undefined;
  /** Settles when the database is open (or could not be opened: the error names it). */
  readonly ready: Promise<void>;

  constructor(dbPath: string) {
    this.worker = new Worker(new URL('./local-store-worker.js', import.meta.url), { workerData: { dbPath } });
    let opened: { resolve: () => void; reject: (e: Error) => void } | undefined;
    this.ready = new Promise((resolve, reject) => {
      opened = { resolve, reject };
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (m: LocalStoreReply) => {
      const err = 'error' in m ? new BuildtraceError(m.error.code, m.error.message, { subject: dbPath }) : undefined;
      if (m.id === 0) {
        if (err) opened?.reject(err);
        else opened?.resolve();
        return;
      }
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (err) w?.reject(err);
      else if ('infos' in m) w?.resolve(new Map(m.infos));
    });
    // a thread that dies fails every question, now and later, instead of leaving it waiting
    const die = (why: string): void => {
      this.stopped ??= new BuildtraceError('STORE_QUERY_FAILED', `the thread reading ${dbPath} stopped: ${why}`, { subject: dbPath });
      opened?.reject(this.stopped);
      for (const w of this.waiting.values()) w.reject(this.stopped);
      this.waiting.clear();
    };
    this.worker.on('error', (e: Error) => die(e.message));
    this.worker.on('exit', (code: number) => die(`exit code ${code}`));
  }

  private ask(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, paths });
    });
  }

  /** Starts reading `paths` now; pathInfos answers from this for the paths it covers. */
  prefetch(paths: readonly string[]): void {
    const infos = this.ready.then(() => this.ask(paths));
    infos.catch(() => undefined); // asked again (and reported) by pathInfos
    this.early = { paths: new Set(paths), infos };
  }

  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    await this.ready;
    const early = this.early;
    const rest = early ? paths.filter((p) => !early.paths.has(p)) : paths;
    const out = new Map<string, PathInfo>();
    if (early && rest.length < paths.length) {
      const got = await early.infos;
      for (const p of paths) {
        const i = got.get(p);
        if (i) out.set(p, i);
      }
    }
    if (rest.length > 0) for (const [p, i] of await this.ask(rest)) out.set(p, i);
    return out;
  }

  close(): void {
    this.stopped ??= new BuildtraceError('STORE_QUERY_FAILED', 'the local store reader was closed');
    void this.worker.terminate();
  }
}
