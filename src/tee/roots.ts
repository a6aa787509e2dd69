import { X509Certificate, createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { BuildtraceError } from '../errors.js';

/** A certificate the verifier's owner pinned (never one that arrived with the evidence). */
export interface PinnedCert {
  readonly cert: X509Certificate;
  readonly file: string;
  readonly sha256: string;
}

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function certSha256(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** Files `trace-daemon evidence --out` writes: a directory holding one is evidence, not roots. */
const EVIDENCE_FILES = new Set(['report.bin', 'quote.bin', 'preimage.bin', 'evidence.json']);

function notRoots(dir: string, why: string): never {
  throw new BuildtraceError(
    'USAGE',
    `--roots ${dir} is not a directory of pinned roots: ${why}. Pin vendor roots you obtained yourself (e.g. AMD KDS, Intel PCS), never the certificates that came with the evidence`,
    { subject: dir },
  );
}

/**
 * Every PEM (or .der) certificate under `dir`, recursively: the roots the verifier's owner pins.
 * Refused: a directory that holds evidence files, or end-entity certificates (a VCEK, VLEK or
 * PCK leaf) — signs that it is evidence-supplied material rather than pinned roots.
 */
export function loadRoots(dir: string): PinnedCert[] {
  const out: PinnedCert[] = [];
  const add = (cert: X509Certificate, p: string): void => {
    if (!cert.ca) notRoots(dir, `${p} is an end-entity certificate (${cn(cert.subject) ?? cert.subject})`);
    out.push({ cert, file: p, sha256: certSha256(cert) });
  };
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (err) {
      throw new BuildtraceError('FILE_UNREADABLE', `cannot read roots directory ${d}: ${(err as NodeJS.ErrnoException).code ?? ''}`, { subject: d });
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      if (EVIDENCE_FILES.has(n)) notRoots(dir, `it contains ${p}, written with TEE evidence`);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.(pem|crt|cer)$/.test(n)) {
        for (const m of readFileSync(p, 'utf8').match(PEM_RE) ?? []) add(new X509Certificate(m), p);
      } else if (n.endsWith('.der')) {
        let cert: X509Certificate | undefined;
        try {
          cert = new X509Certificate(readFileSync(p));
        } catch {
          // not a certificate (a CRL, for example)
        }
        if (cert) add(cert, p);
      }
    }
  };
  walk(dir);
  return out;
}

/** Refuses evidence files that live inside the roots directory (roots pointed at an evidence dump). */
export function refuseEvidenceInRoots(rootsDir: string, evidenceFiles: readonly string[]): void {
  const root = resolve(rootsDir) + sep;
  for (const f of evidenceFiles) if (resolve(f).startsWith(root)) notRoots(rootsDir, `the evidence file ${f} is inside it`);
}

export function cn(name: string): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(name)?.[1];
}

export function validAt(cert: X509Certificate, at: Date): boolean {
  return Date.parse(cert.validFrom) <= at.getTime() && at.getTime() <= Date.parse(cert.validTo);
}

export function pemCertificates(text: string): X509Certificate[] {
  return (text.match(PEM_RE) ?? []).map((p) => new X509Certificate(p));
}
