import { BuildtraceError } from '../errors.js';
import type { PinnedCert } from './roots.js';
import { verifySnp } from './snp-verify.js';
import { detectEvidence } from './tdx-quote.js';
import { verifyTdx } from './tdx-verify.js';
import type { EvidenceVerdict, TeePolicy } from './tee-policy.js';

export interface EvidenceInput {
  readonly report: Uint8Array;
  readonly vek?: Uint8Array;
  readonly declaredKind?: 'VCEK' | 'VLEK';
  readonly expectedReportData?: Uint8Array;
  /** When the evidence was collected (stored by the daemon); used for verificationTime "collection". */
  readonly collectedAt?: Date;
}

/** The instant certificates must be valid at: explicit, the policy's choice, or now. */
export function verificationTime(policy: TeePolicy, explicit: Date | undefined, collectedAt: Date | undefined): Date {
  if (explicit) return explicit;
  const vt = policy.verificationTime;
  if (vt === 'collection') {
    if (!collectedAt) throw new BuildtraceError('USAGE', 'the policy verifies at collection time, but the evidence has no collection time; pass --at');
    return collectedAt;
  }
  if (vt !== undefined && vt !== 'now') return new Date(vt);
  return new Date();
}

/** Checks one piece of SNP or TDX evidence, detected from its bytes. */
export function verifyEvidence(input: EvidenceInput, roots: readonly PinnedCert[], policy: TeePolicy, at?: Date): EvidenceVerdict {
  const when = verificationTime(policy, at, input.collectedAt);
  const kind = detectEvidence(input.report);
  if (kind === 'tdx') return verifyTdx(input.report, roots, when, policy, input.expectedReportData);
  if (kind === 'sev-snp') {
    if (!input.vek) throw new BuildtraceError('USAGE', 'a SEV-SNP report needs its endorsement certificate: --vcek FILE or --vlek FILE');
    return verifySnp(
      { report: input.report, vek: input.vek, ...(input.declaredKind ? { declaredKind: input.declaredKind } : {}), ...(input.expectedReportData ? { expectedReportData: input.expectedReportData } : {}) },
      roots,
      when,
      policy,
    );
  }
  throw new BuildtraceError('EVIDENCE_INVALID', `evidence of ${input.report.length} bytes is neither a SEV-SNP report (1184 bytes) nor a TDX quote (v4/v5 header)`);
}
