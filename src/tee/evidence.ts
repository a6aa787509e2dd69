import { BuildtraceError } from '../errors.js';
import { parseRfc3339 } from '../util/rfc3339.js';
import type { PinnedCert } from './roots.js';
import { verifySnp } from './snp-verify.js';
import { detectEvidence } from './tdx-quote.js';
import { verifyTdx } from './tdx-verify.js';
import type { TdxCollateral } from './tdx-collateral.js';
import type { EvidenceVerdict, TeePolicy } from './tee-policy.js';

export interface EvidenceInput {
  readonly report: Uint8Array;
  readonly vek?: Uint8Array;
  readonly declaredKind?: 'VCEK' | 'VLEK';
  readonly expectedReportData?: Uint8Array;
  /** AMD CRL for the SEV-SNP chain (--crl FILE). */
  readonly crl?: Uint8Array;
  /** Intel PCS collateral for a TDX quote (--collateral DIR). */
  readonly collateral?: TdxCollateral;
}

/**
 * The instant certificates, CRLs and collateral must be current at: the consumer's --at, else
 * the policy's fixed instant, else now. Never a time from the evidence: the daemon's
 * collectedAt is unsigned JSON that whoever serves the evidence can set.
 */
export function verificationTime(policy: TeePolicy, explicit: Date | undefined): Date {
  if (explicit) return explicit;
  const vt = policy.verificationTime;
  if (vt !== undefined && vt !== 'now') return new Date(vt);
  return new Date();
}

/** Parses --at: an RFC 3339 date-time that names a real instant (2026-02-30 is a usage error). */
export function parseAt(text: string, flag = '--at'): Date {
  const d = parseRfc3339(text);
  if (!d) throw new BuildtraceError('USAGE', `${flag} ${JSON.stringify(text)} is not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)`);
  return d;
}

/** Checks one piece of SNP or TDX evidence, detected from its bytes. */
export function verifyEvidence(input: EvidenceInput, roots: readonly PinnedCert[], policy: TeePolicy, at?: Date): EvidenceVerdict {
  const when = verificationTime(policy, at);
  const kind = detectEvidence(input.report);
  if (kind === 'tdx') return verifyTdx(input.report, roots, when, policy, input.expectedReportData, input.collateral);
  if (kind === 'sev-snp') {
    if (!input.vek) throw new BuildtraceError('USAGE', 'a SEV-SNP report needs its endorsement certificate: --vcek FILE or --vlek FILE');
    return verifySnp(
      {
        report: input.report,
        vek: input.vek,
        ...(input.declaredKind ? { declaredKind: input.declaredKind } : {}),
        ...(input.expectedReportData ? { expectedReportData: input.expectedReportData } : {}),
        ...(input.crl ? { crl: input.crl } : {}),
      },
      roots,
      when,
      policy,
    );
  }
  throw new BuildtraceError(
    'EVIDENCE_INVALID',
    `evidence of ${input.report.length} bytes is neither a SEV-SNP report (1184 bytes) nor a TDX quote (v4/v5 header)`,
  );
}
