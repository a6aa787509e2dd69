/**
 * The `Deriver` option of the substituter: for a path with no local `.drv` (a `nix copy` of
 * a prebuilt closure), the `.drv` closure named by the cache's unauthenticated `Deriver:` is
 * fetched from the cache into a directory of the state dir. Nothing here is trusted: the
 * loader checks every `.drv`'s store path against its own bytes, and the target's door then
 * proves that the requested path follows from the `.drv`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CacheBackend } from '../cache/backend.js';
import { BuildtraceError, errorMessage } from '../errors.js';
import { parseNarInfo } from '../nix/narinfo.js';
import { parseStorePath } from '../nix/store-path.js';
import { DrvLoader } from '../store/drv-loader.js';
import { NARINFO_MAX_BYTES } from '../verify/store-facts.js';
import { byteCap, decompressor, singleFileNar } from './nar-stream.js';

/** The largest .drv files in nixpkgs are around a megabyte (as DrvLoader). */
const MAX_DRV_BYTES = 16 << 20;
/** .drv files fetched for one closure at most (nixpkgs' largest closures have tens of thousands). */
const MAX_DRVS = 200_000;

async function collect(body: Readable, compression: string, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  await pipeline(body, byteCap(max, what), decompressor(compression), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) {
      n += c.length;
      if (n > max) throw new BuildtraceError('LIMIT_EXCEEDED', `${what}: more than ${max} bytes`);
      chunks.push(c);
    }
  });
  return Buffer.concat(chunks);
}

export class FetchedDerivations {
  constructor(
    private readonly root: string,
    private readonly caches: readonly CacheBackend[],
    private readonly deadlineMs: number,
    private readonly storeDir = '/nix/store',
  ) {
    mkdirSync(join(root, storeDir), { recursive: true, mode: 0o755 });
  }

  /** The `Deriver:` a cache's narinfo names for this hash part, with the path it describes. */
  /** `undefined` when every cache answered and none names one; a cache that failed (403, a bound) makes it an error, never "absent". */
  async deriverOf(hashPart: string): Promise<{ path: string; drv: string } | undefined> {
    const why: string[] = [];
    for (const c of this.caches) {
      try {
        const o = await c.get(`${hashPart}.narinfo`, { maxBytes: NARINFO_MAX_BYTES });
        if (!o) continue;
        const ni = parseNarInfo(o.body.toString('utf8'), this.storeDir, `${c.url}/${hashPart}.narinfo`);
        if (ni.deriver && ni.deriver !== 'unknown-deriver') return { path: ni.storePath, drv: `${this.storeDir}/${ni.deriver}` };
      } catch (err) {
        // another cache may know it
        why.push(errorMessage(err));
      }
    }
    if (why.length > 0) throw new BuildtraceError('CACHE_ERROR', `no cache could say which .drv produces ${hashPart}: ${why.join('; ')}`);
    return undefined;
  }

  /** Loaders of recent closures (a path is asked for again and again: its narinfo, then its NAR). */
  private readonly recent = new Map<string, DrvLoader>();

  /** Fetches `drv` and every `.drv` below it; the loader that reads them checks each against its store path. */
  async closure(drv: string): Promise<DrvLoader> {
    const have = this.recent.get(drv);
    if (have) return have;
    const loader = await this.fetchClosure(drv);
    if (this.recent.size >= 64) this.recent.delete(this.recent.keys().next().value as string);
    this.recent.set(drv, loader);
    return loader;
  }

  private async fetchClosure(drv: string): Promise<DrvLoader> {
    const loader = new DrvLoader(this.storeDir, MAX_DRVS, this.root);
    const seen = new Set<string>();
    const todo = [drv];
    while (todo.length > 0) {
      const d = todo.pop() as string;
      if (seen.has(d)) continue;
      seen.add(d);
      if (seen.size > MAX_DRVS) throw new BuildtraceError('LIMIT_EXCEEDED', `${drv}: more than ${MAX_DRVS} derivations in its closure`);
      try {
        loader.drv(d);
      } catch {
        await this.fetch(d);
      }
      for (const input of loader.drv(d).inputDrvs.keys()) if (!seen.has(input)) todo.push(input);
    }
    return loader;
  }

  private async fetch(drv: string): Promise<void> {
    const base = drv.slice(this.storeDir.length + 1);
    const hashPart = parseStorePath(drv, this.storeDir).hashPart;
    const why: string[] = [];
    for (const c of this.caches) {
      try {
        const o = await c.get(`${hashPart}.narinfo`, { maxBytes: NARINFO_MAX_BYTES });
        if (!o) continue;
        const ni = parseNarInfo(o.body.toString('utf8'), this.storeDir, `${c.url}/${hashPart}.narinfo`);
        if (ni.storePath !== drv) throw new BuildtraceError('NARINFO_INVALID', `describes ${ni.storePath}`);
        if (ni.narSize > MAX_DRV_BYTES + 4096) throw new BuildtraceError('LIMIT_EXCEEDED', `a NAR of ${ni.narSize} bytes for a .drv`);
        const body = await c.openStream?.(ni.url, { deadlineMs: this.deadlineMs });
        if (!body) throw new BuildtraceError('CACHE_ERROR', body === undefined && !c.openStream ? 'cannot stream from this cache' : `${ni.url} is missing`);
        const nar = await collect(body, ni.compression, MAX_DRV_BYTES + 4096, `${c.url}/${ni.url}`);
        const hex = createHash('sha256').update(nar).digest('hex');
        if (hex !== Buffer.from(ni.narHash.bytes).toString('hex')) throw new BuildtraceError('NARINFO_INVALID', 'the NAR does not match its NarHash');
        const file = join(this.root, this.storeDir, base);
        const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
        writeFileSync(tmp, singleFileNar(nar, `${c.url}/${ni.url}`), { mode: 0o444 });
        renameSync(tmp, file);
        return;
      } catch (err) {
        why.push(`${c.url}: ${errorMessage(err)}`);
      }
    }
    throw new BuildtraceError('FILE_UNREADABLE', `${drv}: no cache serves it${why.length ? ` (${why.join('; ')})` : ''}`, { subject: drv });
  }
}
