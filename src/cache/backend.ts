import { BuildtraceError } from '../errors.js';

/**
 * One binary cache, seen as a key/value store of small objects (`traces/<hash>`,
 * `buildtrace/keys/<fp>.jsonl`, narinfo files). Appends are read-modify-write with
 * a precondition, so concurrent publishers never lose or duplicate a line.
 */
export interface CacheObject {
  readonly body: Buffer;
  /** Opaque version token for conditional replace (an HTTP ETag, or a content hash for file://). */
  readonly etag: string;
}

export interface CacheBackend {
  readonly url: string;
  get(key: string): Promise<CacheObject | undefined>;
  /**
   * Writes `body` only if the object is still at `ifMatch` (or, with `undefined`,
   * does not exist yet). Returns false when the precondition failed.
   */
  putIf(key: string, body: Buffer, ifMatch: string | undefined, contentType: string): Promise<boolean>;
  /** Unconditional write (narinfo and NAR files are immutable by name). */
  put(key: string, body: Buffer, contentType: string): Promise<void>;
}

/** A failure to talk to a cache; `permanent` ones (most 4xx) are not retried. */
export class CacheError extends BuildtraceError {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly status?: number,
  ) {
    super('CACHE_ERROR', message);
  }
}

/** Adds `lines` (each one JSON document) to a JSON Lines object, skipping lines already there. */
export async function appendLines(cache: CacheBackend, key: string, lines: readonly string[], maxAttempts = 20): Promise<{ added: number }> {
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const cur = await cache.get(key);
    const existing = new Set((cur?.body.toString('utf8') ?? '').split('\n').filter((l) => l !== ''));
    const fresh = lines.filter((l) => !existing.has(l));
    if (fresh.length === 0) return { added: 0 };
    const body = Buffer.concat([cur?.body ?? Buffer.alloc(0), Buffer.from(fresh.map((l) => l + '\n').join(''), 'utf8')]);
    if (await cache.putIf(key, body, cur?.etag, 'application/jsonl')) {
      // Read back: a server that ignores preconditions could have let a concurrent writer
      // overwrite us; if our lines are gone, go round again.
      const after = await cache.get(key);
      const present = new Set((after?.body.toString('utf8') ?? '').split('\n'));
      if (lines.every((l) => present.has(l))) return { added: fresh.length };
      continue;
    }
    // someone else wrote in between: read again and retry (with a little jitter)
    await new Promise((r) => setTimeout(r, Math.random() * 20 * (attempt + 1)));
  }
  throw new CacheError(`${cache.url}/${key}: gave up after ${maxAttempts} conflicting writes`, false);
}
