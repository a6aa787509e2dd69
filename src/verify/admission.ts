import { errorMessage } from '../errors.js';
import type { NixPublicKey } from '../nix/nix-key.js';
import { parsePreimage, reportDataFor } from '../tee/binding.js';
import { verifyEvidence } from '../tee/evidence.js';
import { loadRoots } from '../tee/roots.js';
import type { BundleSource } from './sources.js';
import type { AdmittedKey, TrustPolicy } from './trust-policy.js';

/**
 * Which signer identity a verifying key stands for. An identity is a name in the policy's
 * trust tree; a key maps to exactly one identity (several keys may later map to one identity,
 * e.g. keys admitted by a TEE measurement entry).
 */
export type IdentityVerdict =
  | { readonly identity: string; readonly key: NixPublicKey }
  | { readonly rejected: string; readonly code: 'key-not-admitted' | 'tee-evidence-failed'; readonly signer?: string };

export interface KeyStatus {
  readonly admitted: boolean;
  readonly detail: string;
}

export interface Admission {
  /** Keys known before any bundle is read (the policy's keys): the bundle checker tries these. */
  readonly knownKeys: readonly NixPublicKey[];
  /** The identity a key fingerprint is admitted as, or why not. */
  identityFor(fingerprint: string): Promise<IdentityVerdict>;
  /** Per policy key name: admitted or not, and why (for the report). */
  readonly keyStatus: Readonly<Record<string, KeyStatus>>;
}

export interface AdmissionOptions {
  readonly at?: Date;
}

/** A key that needs TEE evidence: admitted if some source's key attestation passes its TEE policy. */
async function admitByEvidence(k: AdmittedKey & { tee: NonNullable<AdmittedKey['tee']> }, sources: readonly BundleSource[], at: Date | undefined): Promise<KeyStatus> {
  const roots = loadRoots(k.tee.roots);
  const reasons: string[] = [];
  for (const src of sources) {
    for (const ev of await src.keyEvidence(k.key.fingerprint)) {
      try {
        const b = parsePreimage(ev.preimage);
        if (b.kind !== 'key' || !Buffer.from(b.publicKey).equals(Buffer.from(k.key.raw))) {
          reasons.push(`${ev.where}: evidence binds another key`);
          continue;
        }
        const vek = ev.certs.find((c) => c.role === 'vcek' || c.role === 'vlek');
        const v = verifyEvidence(
          { report: ev.report, expectedReportData: reportDataFor(ev.preimage), ...(vek ? { vek: vek.der } : {}) },
          roots,
          k.tee.policy,
          at,
        );
        if (v.ok) return { admitted: true, detail: `${v.format} key attestation from ${ev.where} passes its TEE policy` };
        reasons.push(`${ev.where}: ${v.steps.filter((s) => s.ok === false).map((s) => `${s.step}: ${s.detail}`).join('; ')}`);
      } catch (err) {
        reasons.push(`${ev.where}: ${errorMessage(err)}`);
      }
    }
  }
  return { admitted: false, detail: reasons.length === 0 ? 'no key attestation evidence found in any source' : reasons.join(' | ') };
}

/**
 * Admits the policy's keys: a key without a TEE requirement is admitted as its policy name;
 * a key with one only if key attestation evidence from some source passes its TEE policy.
 */
export async function admitKeys(policy: TrustPolicy, sources: readonly BundleSource[], opts: AdmissionOptions = {}): Promise<Admission> {
  const keyStatus: Record<string, KeyStatus> = {};
  const byFp = new Map<string, { key: AdmittedKey; status: KeyStatus }>();
  for (const k of policy.keys.values()) {
    const status = k.tee ? await admitByEvidence({ ...k, tee: k.tee }, sources, opts.at) : { admitted: true, detail: 'no TEE evidence required' };
    keyStatus[k.name] = status;
    byFp.set(k.key.fingerprint, { key: k, status });
  }
  return {
    knownKeys: [...policy.keys.values()].map((k) => k.key),
    keyStatus,
    identityFor: async (fp) => {
      const e = byFp.get(fp);
      if (!e) return { rejected: 'signed by a key the policy does not admit', code: 'key-not-admitted' };
      return e.status.admitted ? { identity: e.key.name, key: e.key.key } : { rejected: `${e.key.name}'s key is not admitted: ${e.status.detail}`, code: 'tee-evidence-failed', signer: e.key.name };
    },
  };
}
