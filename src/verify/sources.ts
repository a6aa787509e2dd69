import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { BuildtraceError } from '../errors.js';
import type { CacheBackend } from '../cache/backend.js';
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

export function evidenceFromJson(line: string, where: string): EvidenceRecord {
  const v = parseStrictJson(line, where);
  const s = (k: string): string => {
    const x = isObject(v) ? v[k] : undefined;
    if (typeof x !== 'string') throw new BuildtraceError('EVIDENCE_INVALID', `${where}: field ${k} is missing`);
    return x;
  };
  const certs = isObject(v) && Array.isArray(v['certs']) ? v['certs'] : [];
  const format = s('format');
  const kind = s('kind');
  if ((format !== 'sev-snp' && format !== 'tdx') || (kind !== 'key' && kind !== 'trace')) throw new BuildtraceError('EVIDENCE_INVALID', `${where}: unknown format or kind`);
  return {
    kind,
    keyFingerprint: s('keyFingerprint'),
    format,
    simulated: isObject(v) && v['simulated'] === true,
    collectedAt: s('collectedAt'),
    report: Buffer.from(s('report'), 'base64'),
    preimage: Buffer.from(s('preimage'), 'base64'),
    certs: certs.map((c) => ({ role: isObject(c) && typeof c['role'] === 'string' ? c['role'] : '', der: Buffer.from(isObject(c) && typeof c['der'] === 'string' ? c['der'] : '', 'base64') })),
    where,
  };
}

/** An `evidence` table row of a trace-daemon database (schema in daemon/trace-db.ts). */
export interface EvidenceDbRow {
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

/** A trace-daemon database, opened read-only. */
export class DbSource implements BundleSource {
  private readonly db: Database.Database;
  private readonly q: Database.Statement<[string], { bundle: string }>;
  constructor(readonly name: string) {
    try {
      // loaded on first use: a verifier that only reads caches does not pay for the native module
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      this.db = new Sqlite(name, { readonly: true, fileMustExist: true });
      this.q = this.db.prepare('SELECT bundle FROM traces WHERE rdrv_hash = ?');
    } catch (err) {
      throw new BuildtraceError('FILE_UNREADABLE', `cannot open database ${name}: ${(err as Error).message}`, { subject: name });
    }
  }

  async bundles(h: string): Promise<string[]> {
    return this.q.all(h).map((r) => r.bundle);
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
}

/** A binary cache: `traces/<hash>` (JSON Lines of bundles) and `buildtrace/keys/<fp>.jsonl`. */
export class CacheSource implements BundleSource {
  readonly name: string;
  private readonly limiter: Limiter;
  /** `maxInFlight`: reads of this cache at once (trace-verify asks for thousands together). */
  constructor(private readonly cache: CacheBackend, maxInFlight = 32) {
    this.name = cache.url;
    this.limiter = new Limiter(maxInFlight);
  }

  private async lines(key: string): Promise<string[]> {
    const o = await this.limiter.run(() => this.cache.get(key));
    return (o?.body.toString('utf8') ?? '').split('\n').filter((l) => l.trim() !== '');
  }

  async bundles(h: string): Promise<string[]> {
    return this.lines(`traces/${h}`);
  }

  async keyEvidence(fp: string): Promise<EvidenceRecord[]> {
    const out: EvidenceRecord[] = [];
    for (const [i, l] of (await this.lines(`buildtrace/keys/${fp}.jsonl`)).entries()) {
      try {
        out.push(evidenceFromJson(l, `${this.name}/buildtrace/keys/${fp}.jsonl:${i + 1}`));
      } catch {
        // a malformed line counts as no evidence; the verifier reports the key as unattested
      }
    }
    return out;
  }
}
