import { readTextInput } from '../util/read-input.js';
import { validateAgainst } from '../util/schema.js';
import { parseStrictJson, type JsonValue } from '../util/strict-json.js';

export interface TeePolicy {
  readonly allowDebug?: boolean;
  readonly verificationTime?: string;
  readonly rootFingerprints?: readonly string[];
  readonly snp?: {
    readonly measurements?: readonly string[];
    readonly vmpl?: number;
    readonly signingKeys?: readonly ('VCEK' | 'VLEK')[];
    readonly reportVersions?: readonly number[];
    readonly minimumTcb?: { readonly bootloader?: number; readonly tee?: number; readonly snp?: number; readonly microcode?: number; readonly fmc?: number };
    readonly hostData?: readonly string[];
  };
  readonly tdx?: {
    readonly mrTd?: readonly string[];
    readonly rtmr0?: readonly string[];
    readonly rtmr1?: readonly string[];
    readonly rtmr2?: readonly string[];
    readonly rtmr3?: readonly string[];
    readonly quoteVersions?: readonly number[];
  };
}

/** Without a policy: signatures, chain, endorsement binding and validity must hold; debug is forbidden. */
export const DEFAULT_TEE_POLICY: TeePolicy = { allowDebug: false };

export function parseTeePolicy(value: JsonValue, subject: string): TeePolicy {
  return validateAgainst<TeePolicy>('tee-policy.schema.json', value, subject, 'POLICY_INVALID');
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
