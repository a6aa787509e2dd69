import { BuildtraceError } from '../errors.js';
import type { TrustNode } from '../verify/trust-tree.js';
import { readTextInput } from '../util/read-input.js';
import { parseRfc3339 } from '../util/rfc3339.js';
import { validateAgainst } from '../util/schema.js';
import { parseStrictJson, type JsonValue } from '../util/strict-json.js';

export interface TeePolicy {
  readonly allowDebug?: boolean;
  /** Explicit opt-out of the measurement allow-list (snp.measurements / tdx.mrTd). */
  readonly anyMeasurement?: boolean;
  /** Explicit opt-out of the TCB floor (snp.minimumTcb; TDX collateral and TCB status). */
  readonly anyTcb?: boolean;
  /** "now" or an RFC 3339 instant; never a time taken from the evidence. */
  readonly verificationTime?: string;
  readonly rootFingerprints?: readonly string[];
  readonly snp?: {
    readonly measurements?: readonly string[];
    /** Required VMPL; absent means 0, "any" accepts every VMPL. */
    readonly vmpl?: number | 'any';
    /** Fail when no AMD CRL was given (revocation would be unchecked). */
    readonly requireCrl?: boolean;
    readonly signingKeys?: readonly ('VCEK' | 'VLEK')[];
    readonly reportVersions?: readonly number[];
    readonly minimumTcb?: { readonly bootloader?: number; readonly tee?: number; readonly snp?: number; readonly microcode?: number; readonly fmc?: number };
    readonly hostData?: readonly string[];
    /** Measurements derived from verified builder images (src/verify/derived-measurement.ts). */
    readonly derivedFrom?: readonly DerivedMeasurementSpec[];
  };
  readonly tdx?: {
    readonly mrTd?: readonly string[];
    readonly rtmr0?: readonly string[];
    readonly rtmr1?: readonly string[];
    readonly rtmr2?: readonly string[];
    readonly rtmr3?: readonly string[];
    readonly quoteVersions?: readonly number[];
    readonly mrSeam?: readonly string[];
    /** 16 bytes hex; every byte of TEE_TCB_SVN must be at least this one's. */
    readonly minimumTeeTcbSvn?: string;
    /** TCB statuses accepted from Intel's TCB info and QE identity (default UpToDate only). */
    readonly acceptedTcbStatuses?: readonly string[];
  };
}

/** Where a measurement comes from: a builder image, the policy its closure must verify under, the launch parameters. */
export interface DerivedMeasurementSpec {
  readonly image: string;
  readonly output?: string;
  /** A trust tree over the enclosing trust policy's key names. */
  readonly imagePolicy: TrustNode;
  readonly vcpus: number;
  readonly vcpuType: string;
  readonly guestFeatures?: string;
  readonly vmmType?: 'QEMU' | 'ec2' | 'gce';
}

/**
 * Inspection without a policy (trace-verify evidence, no --policy): signatures, chain,
 * endorsement binding and validity must hold and debug is forbidden; measurements and
 * TCB are shown, not judged. Policies from files get no such leniency (parseTeePolicy).
 */
export const DEFAULT_TEE_POLICY: TeePolicy = { allowDebug: false, anyMeasurement: true, anyTcb: true };

/**
 * A policy must say which guests it accepts: a measurement allow-list (snp.measurements or
 * tdx.mrTd) unless it opts out with "anyMeasurement": true, and for SEV-SNP a minimum TCB
 * unless "anyTcb": true. Refused at load, so a forgotten list never admits every guest.
 */
export function referenceValueProblem(p: TeePolicy): string | undefined {
  // The schema checks the shape; the calendar (2026-02-30) only a real parse can.
  if (p.verificationTime !== undefined && p.verificationTime !== 'now' && !parseRfc3339(p.verificationTime))
    return `has verificationTime ${JSON.stringify(p.verificationTime)}, which is not a real instant`;
  const hasMeasurements = (p.snp?.measurements?.length ?? 0) > 0 || (p.tdx?.mrTd?.length ?? 0) > 0 || (p.snp?.derivedFrom?.length ?? 0) > 0;
  if (!hasMeasurements && p.anyMeasurement !== true)
    return 'lists no measurements (snp.measurements or tdx.mrTd); set "anyMeasurement": true to accept any guest image';
  if (p.snp?.derivedFrom && p.anyMeasurement === true)
    return 'derives snp.derivedFrom measurements but also sets "anyMeasurement": true, which would admit any image';
  if ((p.snp?.measurements || p.snp?.derivedFrom) && p.snp.minimumTcb === undefined && p.anyTcb !== true)
    return 'has SEV-SNP measurements but no snp.minimumTcb; set "anyTcb": true to accept any TCB';
  return undefined;
}

function parseTeePolicy(value: JsonValue, subject: string): TeePolicy {
  const p = validateAgainst<TeePolicy>('tee-policy.schema.json', value, subject, 'POLICY_INVALID');
  const why = referenceValueProblem(p);
  if (why !== undefined) throw new BuildtraceError('POLICY_INVALID', `${subject}: TEE policy ${why}`, { subject });
  return p;
}

export function loadTeePolicy(file: string): TeePolicy {
  return parseTeePolicy(parseStrictJson(readTextInput(file, 'policy'), file), file);
}

/** One verification step's outcome; `ok: null` means not applicable or not reached. */
export interface Step {
  readonly step: string;
  readonly ok: boolean | null;
  readonly detail: string;
}

export interface EvidenceVerdict {
  readonly format: 'sev-snp' | 'tdx';
  readonly ok: boolean;
  readonly verificationTime: string;
  readonly steps: readonly Step[];
  readonly fields: Record<string, JsonValue>;
}

export function verdictOk(steps: readonly Step[]): boolean {
  return steps.length > 0 && steps.every((s) => s.ok !== false) && steps.some((s) => s.ok === true);
}
