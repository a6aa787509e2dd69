import { X509Certificate, createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
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

/** Every PEM (or .der) certificate under `dir`, recursively. */
export function loadRoots(dir: string): PinnedCert[] {
  const out: PinnedCert[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (err) {
      throw new BuildtraceError('FILE_UNREADABLE', `cannot read roots directory ${d}: ${(err as NodeJS.ErrnoException).code ?? ''}`, { subject: d });
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.(pem|crt|cer)$/.test(n)) {
        for (const m of readFileSync(p, 'utf8').match(PEM_RE) ?? []) {
          const cert = new X509Certificate(m);
          out.push({ cert, file: p, sha256: certSha256(cert) });
        }
      } else if (n.endsWith('.der')) {
        try {
          const cert = new X509Certificate(readFileSync(p));
          if (cert.ca) out.push({ cert, file: p, sha256: certSha256(cert) });
        } catch {
          // not a certificate
        }
      }
    }
  };
  walk(dir);
  return out;
}

export function cn(name: string): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(name)?.[1];
}

export function validAt(cert: X509Certificate, at: Date): boolean {
  return Date.parse(cert.validFrom) <= at.getTime() && at.getTime() <= Date.parse(cert.validTo);
}
