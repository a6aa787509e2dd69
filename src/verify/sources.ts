import { setMaxListeners } from 'node:events';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { BuildtraceError } from '../errors.js';
import { alternativeTraceKey, CacheError, isBundleLine, type CacheBackend, type CacheObject } from '../cache/backend.js';
import { DEFAULT_READ_LIMITS, limitExceeded, type ReadLimits } from '../cache/limits.js';
import { splitTraceObject } from '../trace/laut-jws.js';
import { Limiter } from '../util/limiter.js';
import { isObject, parseStrictJson } from '../util/strict-json.js';

/** Key attestation evidence as published (cache) or stored (daemon database). */
export interface EvidenceRecord {
  readonly kind: 'key' | 'trace';
  readonly keyFingerprint: string;
  readonly format: 'sev-snp' | 'tdx';
  readonly simulated: boolean;
  readonly collectedAt: string;
  readonly report: Buffer;
  readonly preimage: Buffer;
  readonly certs: ReadonlyArray<{ readonly role: string; readonly der: Buffer }>;
  readonly where: string;
}

/** Where trace-verify finds bundles and evidence. */
export interface BundleSource {
  readonly name: string;
  /** Raw bundle lines stored under a resolved input hash. */
  bundles(resolvedInputHash: string): Promise<string[]>;
  keyEvidence(keyFingerprint: string): Promise<EvidenceRecord[]>;
  /** Per-trace evidence published for a resolved derivation (buildtrace/trace-evidence/<hash>.jsonl). */
  traceEvidence(resolvedInputHash: string): Promise<EvidenceRecord[]>;
}

export function evidenceToJson(e: Omit<EvidenceRecord, 'where'>): string {
  return JSON.stringify({
    v: 1,
    kind: e.kind,
    keyFingerprint: e.keyFingerprint,
    format: e.format,
    simulated: e.simulated,
    collectedAt: e.collectedAt,
    report: e.report.toString('base64'),
    preimage: e.preimage.toString('base64'),
    certs: e.certs.map((c) => ({ role: c.role, der: c.der.toString('base64') })),
  });
}

function evidenceFromJson(line: string, where: string): EvidenceRecord {
  const v = parseStrictJson(line, where);
  const s = (k: string): string => {
    const x = isObject(v) ? v[k] : undefined;
    if (typeof x !== 'string') throw new BuildtraceError('EVIDENCE_INVALID', `${where}: field ${k} is missing`);
    return x;
  };
  const certs = isObject(v) && Array.isArray(v['certs']) ? v['certs'] : [];
  const format = s('format');
  const kind = s('kind');
  if ((format !== 'sev-snp' && format !== 'tdx') || (kind !== 'key' && kind !== 'trace'))
    throw new BuildtraceError('EVIDENCE_INVALID', `${where}: unknown format or kind`);
  return {
    kind,
    keyFingerprint: s('keyFingerprint'),
    format,
    simulated: isObject(v) && v['simulated'] === true,
    collectedAt: s('collectedAt'),
    report: Buffer.from(s('report'), 'base64'),
    preimage: Buffer.from(s('preimage'), 'base64'),
    certs: certs.map((c) => ({
      role: isObject(c) && typeof c['role'] === 'string' ? c['role'] : '',
      der: Buffer.from(isObject(c) && typeof c['der'] === 'string' ? c['der'] : '', 'base64'),
    })),
    where,
  };
}

/** An `evidence` table row of a trace-daemon database (schema in daemon/trace-db.ts). */
interface EvidenceDbRow {
  kind: string;
  key_fp: string;
  format: string;
  simulated: number;
  collected_at: string;
  report: Buffer;
  preimage: Buffer;
  certs: string;
}

export function evidenceFromRow(r: EvidenceDbRow, where: string): EvidenceRecord {
  return {
    kind: r.kind === 'trace' ? 'trace' : 'key',
    keyFingerprint: r.key_fp,
    format: r.format as 'sev-snp' | 'tdx',
    simulated: r.simulated === 1,
    collectedAt: r.collected_at,
    report: r.report,
    preimage: r.preimage,
    certs: (JSON.parse(r.certs) as { role: string; der: string }[]).map((c) => ({ role: c.role, der: Buffer.from(c.der, 'base64') })),
    where,
  };
}

/**
 * Splits an object into records for the verifier, under the line caps, identical records once.
 * JSON Lines (every line a JSON object) give one record per line; any other document (laut's
 * pretty-printed JWS container `{"signatures":[…]}`) is one record, whole.
 */
export function recordsOf(text: string, limits: Pick<ReadLimits, 'maxLineBytes' | 'maxLines'>, object: string, where: string): string[] {
  const out = new Set<string>();
  let lines = 0;
  let jsonLines = true;
  const tooLong = (l: string): boolean => l.length > limits.maxLineBytes || (l.length * 3 > limits.maxLineBytes && Buffer.byteLength(l) > limits.maxLineBytes);
  for (let at = 0; at < text.length; ) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    const l = text.slice(at, nl).trim();
    at = nl + 1;
    if (l === '') continue;
    if (++lines > limits.maxLines) throw limitExceeded('maxLines', limits.maxLines, object, where);
    if (!(l.startsWith('{') && l.endsWith('}'))) jsonLines = false;
    if (jsonLines && tooLong(l)) throw limitExceeded('maxLineBytes', limits.maxLineBytes, object, where, `line ${lines}`);
    out.add(l);
  }
  if (jsonLines) return [...out];
  const whole = text.trim();
  if (tooLong(whole)) throw limitExceeded('maxLineBytes', limits.maxLineBytes, object, where, 'one document that is not JSON Lines');
  return [whole];
}

/** A trace-daemon database, opened read-only. */
export class DbSource implements BundleSource {
  private readonly db: Database.Database;
  private readonly q: Database.Statement<[{ h: string; max: number; rows: number }], { bundle: string | null; n: number }>;
  constructor(
    readonly name: string,
    private readonly limits: ReadLimits = DEFAULT_READ_LIMITS,
  ) {
    try {
      // loaded on first use: a verifier that only reads caches does not pay for the native module
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      this.db = new Sqlite(name, { readonly: true, fileMustExist: true });
      // an oversized row is never loaded: its length is checked in SQL
      this.q = this.db.prepare(
        'SELECT CASE WHEN length(CAST(bundle AS BLOB)) > @max THEN NULL ELSE bundle END AS bundle, length(CAST(bundle AS BLOB)) AS n FROM traces WHERE rdrv_hash = @h LIMIT @rows',
      );
    } catch (err) {
      throw new BuildtraceError('FILE_UNREADABLE', `cannot open database ${name}: ${(err as Error).message}`, { subject: name });
    }
  }

  async bundles(h: string): Promise<string[]> {
    const rows = this.q.all({ h, max: this.limits.maxLineBytes, rows: this.limits.maxLines + 1 });
    if (rows.length > this.limits.maxLines) throw limitExceeded('maxLines', this.limits.maxLines, `traces where rdrv_hash = ${h}`, this.name);
    const out = new Set<string>();
    for (const r of rows) {
      if (r.bundle === null)
        throw limitExceeded('maxLineBytes', this.limits.maxLineBytes, `traces where rdrv_hash = ${h}`, this.name, `a bundle of ${r.n} bytes`);
      out.add(r.bundle);
    }
    return [...out];
  }

  async keyEvidence(fp: string): Promise<EvidenceRecord[]> {
    let rows: (EvidenceDbRow & { id: number })[];
    try {
      rows = this.db.prepare("SELECT * FROM evidence WHERE key_fp = ? AND kind = 'key'").all(fp) as typeof rows;
    } catch {
      return []; // a database from before evidence was recorded
    }
    return rows.map((r) => evidenceFromRow(r, `${this.name}#evidence/${r.id}`));
  }

  async traceEvidence(h: string): Promise<EvidenceRecord[]> {
    let rows: (EvidenceDbRow & { id: number })[];
    try {
      rows = this.db.prepare("SELECT e.* FROM evidence e JOIN traces t ON t.id = e.trace_id WHERE e.kind = 'trace' AND t.rdrv_hash = ?").all(h) as typeof rows;
    } catch {
      return [];
    }
    return rows.map((r) => evidenceFromRow(r, `${this.name}#evidence/${r.id}`));
  }
}

interface CacheSourceOptions {
  /** reads of this cache at once (trace-verify asks for thousands together) */
  readonly maxInFlight?: number;
  readonly limits?: ReadLimits;
}

/**
 * A binary cache: `traces/<hash>` (JSON Lines of bundles, or a foreign document such as laut's
 * container, then also our `traces/<hash>.jsonl` beside it) and `buildtrace/keys/<fp>.jsonl`.
 * Every read is bounded (ReadLimits); the first failure ends all reads of this cache, so a run
 * that has to stop is not held up by requests still queued against a hostile server.
 */
export class CacheSource implements BundleSource {
  readonly name: string;
  private readonly limiter: Limiter;
  private readonly limits: ReadLimits;
  private readonly abort = new AbortController();
  private failure: unknown;
  constructor(
    private readonly cache: CacheBackend,
    opts: CacheSourceOptions = {},
  ) {
    this.name = cache.url;
    this.limiter = new Limiter(opts.maxInFlight ?? 32);
    this.limits = opts.limits ?? DEFAULT_READ_LIMITS;
    // every request in flight listens on it (up to maxInFlight at once): not a leak
    setMaxListeners(0, this.abort.signal);
  }

  /** Another object of this cache (the last mile's narinfo files), under the same limiter, bounds and first-failure rule. */
  readObject(key: string, maxBytes: number): Promise<CacheObject | undefined> {
    return this.get(key, maxBytes);
  }

  /** Which of `keys` the cache surely does not have, where its backend can say at once (file://); none otherwise. */
  absentObjects(keys: readonly string[]): ReadonlySet<string> {
    if (this.failure !== undefined) throw this.failure;
    return this.cache.absent?.(keys) ?? new Set();
  }

  private async get(key: string, maxBytes = this.limits.maxObjectBytes): Promise<CacheObject | undefined> {
    if (this.failure !== undefined) throw this.failure;
    try {
      return await this.limiter.run(() => {
        if (this.failure !== undefined) throw this.failure;
        return this.cache.get(key, { maxBytes, signal: this.abort.signal });
      });
    } catch (err) {
      // Forbidden reads as absent here, as in Nix (S3 answers 403 for a missing key when the
      // bucket is not listable): a cache can always withhold an object, and absence adds no trust.
      if (err instanceof CacheError && err.reason === 'forbidden') return undefined;
      throw this.fail(err);
    }
  }

  /** The first failure is every later read's answer; requests still in flight are abandoned. */
  private fail(err: unknown): unknown {
    if (this.failure === undefined) {
      this.failure = err;
      this.abort.abort();
    }
    return this.failure;
  }

  private async records(key: string): Promise<string[]> {
    const o = await this.get(key);
    try {
      return o ? recordsOf(o.body.toString('utf8'), this.limits, key, this.name) : [];
    } catch (err) {
      throw this.fail(err);
    }
  }

  async bundles(h: string): Promise<string[]> {
    const key = `traces/${h}`;
    const recs = await this.records(key);
    // JSON Lines of bundles, or laut's JWS container (one record, whole): one unit per bundle or JWS
    const units = (rs: readonly string[]): string[] => rs.flatMap((r) => splitTraceObject(r, `${this.name}/${key}`));
    // our bundles sit beside a foreign object, never in it (see appendLines)
    if (recs.every(isBundleLine)) return units(recs);
    const beside = await this.records(alternativeTraceKey(key));
    return [...new Set([...units(recs), ...units(beside)])];
  }

  async keyEvidence(fp: string): Promise<EvidenceRecord[]> {
    return this.evidence(`buildtrace/keys/${fp}.jsonl`);
  }

  async traceEvidence(h: string): Promise<EvidenceRecord[]> {
    return this.evidence(`buildtrace/trace-evidence/${h}.jsonl`);
  }

  private async evidence(key: string): Promise<EvidenceRecord[]> {
    const out: EvidenceRecord[] = [];
    for (const [i, l] of (await this.records(key)).entries()) {
      try {
        out.push(evidenceFromJson(l, `${this.name}/${key}:${i + 1}`));
      } catch {
        // a malformed line counts as no evidence; the verifier reports the key as unattested
      }
    }
    return out;
  }
}
