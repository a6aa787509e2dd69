import type { Readable } from 'node:stream';
import { BuildtraceError } from '../errors.js';
import { DEFAULT_READ_LIMITS, limitExceeded } from './limits.js';

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

export interface GetOptions {
  /** refuse (LIMIT_EXCEEDED) an object larger than this, without reading past it */
  readonly maxBytes?: number;
  /** abandons the request (the reader already failed for another reason) */
  readonly signal?: AbortSignal;
}

export interface CacheBackend {
  /** The cache's URL for messages, status and logs: never carries a password. */
  readonly url: string;
  /**
   * The object, or `undefined` only when the cache says it does not exist (404/410, ENOENT).
   * Any other answer (403 included) is an error: a writer must never take it for "absent".
   */
  get(key: string, opts?: GetOptions): Promise<CacheObject | undefined>;
  /**
   * Optional, for a local backend: which of `keys` do not exist now, answered at once for the
   * whole batch (the last mile asks a cache for 10,000 narinfo files it mostly does not have).
   * Only a sure "absent" may be returned; every other key is read with `get` as usual.
   */
  absent?(keys: readonly string[]): ReadonlySet<string>;
  /**
   * Optional: a large object (a NAR) as a byte stream, `undefined` when absent. The stream
   * ends or fails within `deadlineMs`; the reader bounds the bytes it takes.
   */
  openStream?(key: string, opts: { readonly deadlineMs: number }): Promise<Readable | undefined>;
  /**
   * Writes `body` only if the object is still at `ifMatch` (or, with `undefined`,
   * does not exist yet). Returns false when the precondition failed.
   */
  putIf(key: string, body: Buffer, ifMatch: string | undefined, contentType: string): Promise<boolean>;
  /** Unconditional write (narinfo and NAR files are immutable by name). */
  put(key: string, body: Buffer, contentType: string): Promise<void>;
}

/** Why a cache operation failed, where a caller needs more than permanent/transient. */
type CacheErrorReason = 'foreign-object' | 'not-regular-file' | 'forbidden';

/** A failure to talk to a cache; `permanent` ones (most 4xx) are not retried. */
export class CacheError extends BuildtraceError {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly status?: number,
    readonly reason?: CacheErrorReason,
  ) {
    super('CACHE_ERROR', message);
  }
}

/**
 * A line of a `traces/<hash>` object as buildtrace and other Sigstore-bundle writers produce
 * it: one JSON object naming a Sigstore bundle media type. Structural only (the verifier
 * checks the bundle); cheap enough to run on every line a verifier reads.
 */
export function isBundleLine(line: string): boolean {
  const l = line.trim();
  return l.startsWith('{') && l.endsWith('}') && /"mediaType"\s*:\s*"application\/vnd\.dev\.sigstore\.bundle/.test(l);
}

/** A line of a JSON Lines object: one JSON object. */
function isJsonObjectLine(line: string): boolean {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/**
 * What a publisher reads back from a cache before appending to it. Lower than a verifier's
 * object bound: the daemon runs in a 128 MiB heap with several appends in flight per cache,
 * and a real `traces/<hash>` object (a few KB per signer) never comes near 8 MiB. An object
 * past these bounds fails only its own key (LIMIT_EXCEEDED), retried with backoff.
 */
const WRITE_LIMITS = { maxObjectBytes: 8 << 20, maxLines: DEFAULT_READ_LIMITS.maxLines, maxLineBytes: DEFAULT_READ_LIMITS.maxLineBytes } as const;

/**
 * Checks every non-empty line of `body` with `fits` without holding the object as one string
 * (a 63 MiB object of short lines as strings and a Set exhausted the daemon's heap): lines are
 * decoded one at a time, and the line count and each line's size are bounded.
 */
function everyLineFits(body: Buffer, fits: (line: string) => boolean, where: { cache: string; key: string }): boolean {
  let lines = 0;
  for (let start = 0; start < body.length; ) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    if (end - start > WRITE_LIMITS.maxLineBytes) throw limitExceeded('maxLineBytes', WRITE_LIMITS.maxLineBytes, where.key, where.cache);
    const line = body.toString('utf8', start, end);
    if (line.trim() !== '') {
      if (++lines > WRITE_LIMITS.maxLines) throw limitExceeded('maxLines', WRITE_LIMITS.maxLines, where.key, where.cache);
      if (!fits(line)) return false;
    }
    start = end + 1;
  }
  return true;
}

/** Whether `line` is one whole line of `body` (between newlines), found without splitting it. */
function hasLine(body: Buffer, line: Buffer): boolean {
  for (let at = body.indexOf(line); at >= 0; at = body.indexOf(line, at + 1)) {
    const end = at + line.length;
    if ((at === 0 || body[at - 1] === 0x0a) && (end === body.length || body[end] === 0x0a)) return true;
  }
  return false;
}

/** `traces/<hash>`: the object laut and buildtrace share (laut's location). */
const isTraceKey = (key: string): boolean => /^traces\/[^/.]+$/.test(key);

/**
 * Where buildtrace puts its bundles for `traces/<hash>` when that object holds something that
 * is not JSON Lines of bundles (laut's JWS container `{"signatures":[…]}`): beside it, never in
 * it. Readers look here whenever `traces/<hash>` is such a foreign object.
 */
export const alternativeTraceKey = (key: string): string => `${key}.jsonl`;

/** The object `preconditionsChecked` writes (twice, the same bytes). */
const PRECONDITION_PROBE_KEY = 'buildtrace/conditional-write-probe';

/**
 * Whether the cache refuses a write whose precondition fails: it writes a probe object, then
 * the same bytes again under a stale `If-Match`, which must be refused (412/409). Plain nginx
 * WebDAV and s3rver accept it: there concurrent publishers can lose lines (see `appendLines`).
 */
export async function preconditionsChecked(cache: CacheBackend): Promise<boolean> {
  const body = Buffer.from('buildtrace checks here that a write under a stale If-Match is refused\n', 'utf8');
  await cache.put(PRECONDITION_PROBE_KEY, body, 'text/plain');
  return !(await cache.putIf(PRECONDITION_PROBE_KEY, body, '"buildtrace-stale-etag"', 'text/plain'));
}

/**
 * Adds `lines` (each one JSON document) to a JSON Lines object, skipping lines already there.
 *
 * What survives concurrent writers depends on the backend's conditional write:
 * - file://: a per-object lock file (O_EXCL) around compare-and-rename: no line is lost (a lock
 *   older than 30 s is taken for a crashed writer's and broken).
 * - http(s) and s3 that refuse a stale `If-Match`/`If-None-Match: *` (AWS S3 since 2024, the
 *   nginx + Lua configuration in test/nginx.ts): no line is lost. Content-hash ETags are not
 *   needed for this: appended objects only grow, so even an mtime+size ETag changes with
 *   every append.
 * - servers that ignore preconditions (plain nginx WebDAV, s3rver): the read-back catches a
 *   writer overwritten before it reads back, not one overwritten after, so concurrent
 *   publishers can lose lines; `preconditionsChecked` tells, and the daemon warns.
 */
export async function appendLines(cache: CacheBackend, key: string, lines: readonly string[], maxAttempts = 20): Promise<{ added: number; key: string }> {
  const fits = isTraceKey(key) || isTraceKey(key.replace(/\.jsonl$/, '')) ? isBundleLine : isJsonObjectLine;
  const where = { cache: cache.url, key };
  const ours = lines.map((l) => Buffer.from(l, 'utf8'));
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    // a writer reads what others wrote: bounded like any reader, and tighter (WRITE_LIMITS)
    const cur = await cache.get(key, { maxBytes: WRITE_LIMITS.maxObjectBytes });
    const prefix = cur?.body ?? Buffer.alloc(0);
    if (!everyLineFits(prefix, fits, where)) {
      // never write into an object of another format: it stays byte-identical
      if (isTraceKey(key)) return appendLines(cache, alternativeTraceKey(key), lines, maxAttempts);
      throw new CacheError(
        `${cache.url}/${key}: holds something other than JSON Lines of ${fits === isBundleLine ? 'bundles' : 'JSON objects'}; left untouched, nothing appended`,
        true,
        undefined,
        'foreign-object',
      );
    }
    const fresh = ours.filter((l, i) => ours.findIndex((o) => o.equals(l)) === i && !hasLine(prefix, l));
    if (fresh.length === 0) return { added: 0, key };
    // an object whose last line has no newline must not get ours glued onto it
    const glue = prefix.length > 0 && prefix[prefix.length - 1] !== 0x0a ? [Buffer.from('\n')] : [];
    const body = Buffer.concat([prefix, ...glue, ...fresh.flatMap((l) => [l, Buffer.from('\n')])]);
    if (await cache.putIf(key, body, cur?.etag, 'application/jsonl')) {
      // Read back: a server that ignores preconditions may have let a concurrent writer
      // overwrite us already; if our lines are gone, go round again (this cannot see a later
      // overwrite: on such servers only one publisher at a time is safe).
      const after = await cache.get(key, { maxBytes: WRITE_LIMITS.maxObjectBytes });
      if (after && ours.every((l) => hasLine(after.body, l))) return { added: fresh.length, key };
      continue;
    }
    // someone else wrote in between: read again and retry (with a little jitter)
    await new Promise((r) => setTimeout(r, Math.random() * 20 * (attempt + 1)));
  }
  throw new CacheError(`${cache.url}/${key}: gave up after ${maxAttempts} conflicting writes`, false);
}
