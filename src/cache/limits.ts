import { BuildtraceError } from '../errors.js';

/**
 * Bounds on what a reader takes from a cache it does not control. The defaults are far above
 * anything a real cache holds (one trace line is a few KB; a resolved derivation has a handful
 * of signers), so only a hostile or broken cache reaches them, and then the run stops with
 * LIMIT_EXCEEDED instead of growing without bound.
 */
export interface ReadLimits {
  /** bytes of one object (`traces/<hash>`, key evidence) */
  readonly maxObjectBytes: number;
  /** bytes of one line (one bundle, or one whole non-JSON-Lines document such as a laut container) */
  readonly maxLineBytes: number;
  /** non-empty lines of one object */
  readonly maxLines: number;
  /** total time for one HTTP request, connect to last body byte (not an idle timeout) */
  readonly requestTimeoutMs: number;
  /** further attempts after a timeout, a network error or a 5xx (GET only) */
  readonly retries: number;
  /** per run: distinct key hints (fingerprints the policy does not name) tried against measured identities */
  readonly maxKeyHints: number;
  /** per run: TEE evidence lines verified that did not pass (a line that passes ends its search) */
  readonly maxEvidenceChecks: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxObjectBytes: 64 << 20,
  maxLineBytes: 1 << 20,
  maxLines: 100_000,
  // 3 attempts of 15 s plus backoff stay under a minute even against a server that trickles
  requestTimeoutMs: 15_000,
  retries: 2,
  // a TEE builder has one key per boot; an honest run checks each key's attestation once
  maxKeyHints: 256,
  maxEvidenceChecks: 256,
};

const flagOf = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The typed error for every bound: names the limit, its value, the object and the cache. */
export function limitExceeded(limit: keyof ReadLimits, value: number, object: string, cache: string, detail = ''): BuildtraceError {
  const flag = `--${flagOf(limit)}`;
  return new BuildtraceError(
    'LIMIT_EXCEEDED',
    `${cache}/${object}: limit ${limit} (${value}) exceeded${detail ? `: ${detail}` : ''}; a real cache never gets there (raise it with ${flag} if this one is trusted)`,
    { subject: `${cache}/${object}` },
  );
}

/** A per-run bound (not about one object): names the limit, its value and what reached it. */
export function runLimitExceeded(limit: 'maxKeyHints' | 'maxEvidenceChecks', value: number, detail: string): BuildtraceError {
  return new BuildtraceError(
    'LIMIT_EXCEEDED',
    `limit ${limit} (${value} per run) exceeded: ${detail}; honest caches never get there (raise it with --${flagOf(limit)} if they are trusted)`,
  );
}

/** The command-line flag of each limit (`maxObjectBytes` -> `max-object-bytes`). */
export const LIMIT_FLAGS = Object.keys(DEFAULT_READ_LIMITS).map(flagOf);

/** Limits from flag values (`get('max-lines')`), defaults for the rest; a bad value names its flag. */
export function readLimitsFrom(get: (flag: string) => string | undefined): ReadLimits {
  const out: Record<string, number> = { ...DEFAULT_READ_LIMITS };
  for (const key of Object.keys(DEFAULT_READ_LIMITS)) {
    const flag = flagOf(key);
    const v = get(flag);
    if (v === undefined) continue;
    const n = Number(v);
    const min = key === 'retries' ? 0 : 1;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min)
      throw new BuildtraceError('USAGE', `--${flag} ${JSON.stringify(v)}: expected an integer >= ${min}`);
    out[key] = n;
  }
  return out as unknown as ReadLimits;
}
