import { BuildtraceError, decidedOrThrow } from '../errors.js';
import { publicKeyFromRaw, spkiFingerprint, type NixPublicKey } from '../nix/nix-key.js';
import { parsePreimage, reportDataFor, traceAttestationPreimage } from '../tee/binding.js';
import { loadTdxCollateral } from '../tee/collateral-dir.js';
import { verifyEvidence, type EvidenceInput } from '../tee/evidence.js';
import { loadRoots, type PinnedCert } from '../tee/roots.js';
import { readInput } from '../util/read-input.js';
import { isObject, parseStrictJson } from '../util/strict-json.js';
import { RunBudget } from './budget.js';
import type { BundleSource, EvidenceRecord } from './sources.js';
import { claimCounts, type AdmittedKey, type MeasuredIdentity, type TeeRequirement, type TrustPolicy } from './trust-policy.js';

/**
 * Which signer identity a verifying key stands for. An identity is a name in the policy's
 * trust tree; a key maps to exactly one identity (several keys may later map to one identity,
 * e.g. keys admitted by a TEE measurement entry).
 */
export type IdentityVerdict =
  | { readonly identity: string; readonly key: NixPublicKey; readonly detail?: string }
  | { readonly rejected: string; readonly code: 'key-not-admitted' | 'tee-evidence-failed' | 'key-retired' | 'key-revoked'; readonly signer?: string };

interface KeyStatus {
  readonly admitted: boolean;
  readonly detail: string;
}

interface Admission {
  /** Keys known before any bundle is read (the policy's keys): the bundle checker tries these. */
  readonly knownKeys: readonly NixPublicKey[];
  /** The identity a key fingerprint is admitted as, or why not. */
  identityFor(fingerprint: string): Promise<IdentityVerdict>;
  /** Per policy key name: admitted or not, and why (for the report). */
  readonly keyStatus: Readonly<Record<string, KeyStatus>>;
  /** Keys that a bundle's key hints name and measured identities admit (for the signature check). */
  keysForBundle(line: string): Promise<{ readonly keys: NixPublicKey[]; readonly why: string[] }>;
  /** The TEE requirement behind an identity, if any (per-trace evidence is checked against it). */
  teeRequirementOf(identity: string): TeeRequirement | undefined;
}

interface AdmissionOptions {
  readonly at?: Date;
  /** Per-run bounds on key hints tried and evidence that fails (a fresh default budget if absent). */
  readonly budget?: RunBudget;
}

/** A per-run bound hit while checking evidence stops the run; any other error is that line's reason. */
function rethrowBound(err: unknown): void {
  if (err instanceof BuildtraceError && err.code === 'LIMIT_EXCEEDED') throw err;
}

/**
 * The SPKI fingerprints a bundle line points at, to look up key attestations of keys the policy
 * does not name: a hex-SPKI hint (older bundles) and the statement's `builder.id`
 * (`urn:laut:builder:sha256:<hex SPKI>`), since an SSH-fingerprint hint cannot be turned back into
 * a key. Both are unauthenticated pointers: the attestation must bind that very key, and the
 * signature must verify under it.
 */
function bundleKeyPointers(line: string): string[] {
  try {
    const b = parseStrictJson(line, 'bundle');
    const env = isObject(b) ? b['dsseEnvelope'] : undefined;
    if (!isObject(env)) return [];
    const sigs = Array.isArray(env['signatures']) ? env['signatures'] : [];
    const out = sigs.flatMap((x) => (isObject(x) && typeof x['keyid'] === 'string' && HEX_FP.test(x['keyid']) ? [x['keyid']] : []));
    const payload = typeof env['payload'] === 'string' ? parseStrictJson(Buffer.from(env['payload'], 'base64').toString('utf8'), 'statement') : null;
    const pred = isObject(payload) ? payload['predicate'] : undefined;
    const run = isObject(pred) ? pred['runDetails'] : undefined;
    const builder = isObject(run) ? run['builder'] : undefined;
    const id = isObject(builder) ? builder['id'] : undefined;
    const m = typeof id === 'string' ? /^urn:laut:builder:sha256:([0-9a-f]{64})$/.exec(id) : null;
    if (m?.[1]) out.push(m[1]);
    return out;
  } catch (err) {
    decidedOrThrow(err); // an unreadable line is judged (malformed) by the bundle check
    return [];
  }
}

const HEX_FP = /^[0-9a-f]{64}$/;

/** Verifies one piece of key-attestation evidence under a TEE requirement; the bound public key when it passes. */
function keyAttestation(
  ev: EvidenceRecord,
  fp: string,
  tee: TeeRequirement,
  roots: readonly PinnedCert[],
  at: Date | undefined,
  budget: RunBudget,
): { ok: true; raw: Uint8Array; detail: string } | { ok: false; detail: string; otherKey?: true } {
  const b = parsePreimage(ev.preimage);
  if (b.kind !== 'key') return { ok: false, detail: `${ev.where}: not a key attestation` };
  // the cheap test first: evidence for another key is never verified (a cache can serve any number of lines)
  if (spkiFingerprint(b.publicKey) !== fp) return { ok: false, detail: `${ev.where} binds another key`, otherKey: true };
  const v = verifyEvidence(evidenceInput(ev, reportDataFor(ev.preimage), tee), roots, tee.policy, at);
  if (!v.ok) budget.evidenceFailed(ev.where);
  if (!v.ok)
    return {
      ok: false,
      detail: `${ev.where}: ${v.steps
        .filter((s) => s.ok === false)
        .map((s) => `${s.step}: ${s.detail}`)
        .join('; ')}`,
    };
  return { ok: true, raw: b.publicKey, detail: `${v.format} key attestation from ${ev.where} passes its TEE policy` };
}

/** The verifier input for stored evidence: its endorsement key and, for TDX, the policy's collateral. */
function evidenceInput(
  ev: { report: Uint8Array; certs: readonly { role: string; der: Uint8Array }[] },
  expectedReportData: Uint8Array,
  tee: TeeRequirement,
): EvidenceInput {
  const vek = ev.certs.find((c) => c.role === 'vcek' || c.role === 'vlek');
  return {
    report: ev.report,
    expectedReportData,
    ...(vek ? { vek: vek.der } : {}),
    ...(tee.collateral ? { collateral: once(tee.collateral, loadTdxCollateral) } : {}),
    ...(tee.crl ? { crl: once(tee.crl, (f) => readInput(f, 'CRL')) } : {}),
  };
}

/** Collateral and CRL files, read once per run. */
const loaded = new Map<string, unknown>();
function once<T>(file: string, load: (f: string) => T): T {
  if (!loaded.has(file)) loaded.set(file, load(file));
  return loaded.get(file) as T;
}

/** A key that needs TEE evidence: admitted if some source's key attestation passes its TEE policy. */
async function admitByEvidence(
  k: AdmittedKey & { tee: TeeRequirement },
  sources: readonly BundleSource[],
  at: Date | undefined,
  budget: RunBudget,
): Promise<KeyStatus> {
  const roots = loadRoots(k.tee.roots);
  const reasons: string[] = [];
  let otherKeys = 0;
  for (const src of sources) {
    for (const ev of await src.keyEvidence(k.key.fingerprint)) {
      try {
        const r = keyAttestation(ev, k.key.fingerprint, k.tee, roots, at, budget);
        if (r.ok && Buffer.from(r.raw).equals(Buffer.from(k.key.raw))) return { admitted: true, detail: r.detail };
        if (!r.ok && r.otherKey) otherKeys++;
        else if (reasons.length < 8) reasons.push(r.ok ? `${ev.where}: evidence binds another key` : r.detail);
      } catch (err) {
        rethrowBound(err);
        if (reasons.length < 8) reasons.push(`${ev.where}: ${decidedOrThrow(err).message}`);
      }
    }
  }
  if (otherKeys > 0) reasons.push(`${otherKeys} evidence line(s) bind another key`);
  return { admitted: false, detail: reasons.length === 0 ? 'no key attestation evidence found in any source' : reasons.join(' | ') };
}

/**
 * A key the policy does not name, looked up by its fingerprint (the bundle's key hint) among
 * the measured identities: admitted as the first (by name) whose TEE requirement its key
 * attestation passes. The attestation's preimage carries the public key; the fingerprint must
 * be that key's, so a hint cannot borrow another key's evidence.
 */
async function admitByMeasurement(
  fp: string,
  measured: readonly MeasuredIdentity[],
  sources: readonly BundleSource[],
  at: Date | undefined,
  budget: RunBudget,
): Promise<IdentityVerdict> {
  const reasons: string[] = [];
  let otherKeys = 0;
  const evidence: EvidenceRecord[] = [];
  for (const src of sources) evidence.push(...(await src.keyEvidence(fp)));
  if (evidence.length === 0)
    return { rejected: 'signed by a key the policy does not name, and no source has a key attestation for it', code: 'key-not-admitted' };
  for (const m of measured) {
    const roots = loadRoots(m.tee.roots);
    for (const ev of evidence) {
      try {
        const r = keyAttestation(ev, fp, m.tee, roots, at, budget);
        if (r.ok) return { identity: m.name, key: publicKeyFromRaw(m.name, r.raw), detail: r.detail };
        if (r.otherKey) otherKeys++;
        else if (reasons.length < 8) reasons.push(`${m.name}: ${r.detail}`);
      } catch (err) {
        rethrowBound(err);
        if (reasons.length < 8) reasons.push(`${m.name}: ${ev.where}: ${decidedOrThrow(err).message}`);
      }
    }
  }
  if (otherKeys > 0) reasons.push(`${otherKeys} evidence line(s) bind another key`);
  return { rejected: `key ${fp.slice(0, 16)}… is not admitted by measurement: ${reasons.join(' | ')}`, code: 'tee-evidence-failed' };
}

/**
 * Admits the policy's keys: a key without a TEE requirement is admitted as its policy name;
 * a key with one only if key attestation evidence from some source passes its TEE policy.
 * Keys the policy does not name are admitted lazily by measured identities (entries without a
 * public key): every key whose key attestation passes the entry's TEE requirement is that one
 * identity, so fresh keys from reboots never multiply its vote.
 */
export async function admitKeys(policy: TrustPolicy, sources: readonly BundleSource[], opts: AdmissionOptions = {}): Promise<Admission> {
  const budget = opts.budget ?? new RunBudget();
  const keyStatus: Record<string, KeyStatus> = {};
  const byFp = new Map<string, { key: AdmittedKey; status: KeyStatus }>();
  for (const k of policy.keys.values()) {
    // a retired or revoked key is out whatever evidence it shows (and a measured identity cannot readmit it: byFp is asked first)
    const status = !claimCounts(k)
      ? { admitted: false, detail: `${k.status} in the policy: its claims never count` }
      : k.tee
        ? await admitByEvidence({ ...k, tee: k.tee }, sources, opts.at, budget)
        : { admitted: true, detail: 'no TEE evidence required' };
    keyStatus[k.name] = status;
    byFp.set(k.key.fingerprint, { key: k, status });
  }
  const measured = [...(policy.measured?.values() ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const m of measured) keyStatus[m.name] = { admitted: true, detail: 'admits every key whose key attestation passes its TEE policy (one signer)' };
  const lazily = new Map<string, Promise<IdentityVerdict>>();
  const admittedCount = new Map<string, number>();
  const identityFor = async (fp: string): Promise<IdentityVerdict> => {
    const e = byFp.get(fp);
    if (e && !claimCounts(e.key))
      return {
        rejected: `${e.key.name}'s key is ${e.key.status} in the policy: its claims never count`,
        code: e.key.status === 'revoked' ? 'key-revoked' : 'key-retired',
        signer: e.key.name,
      };
    if (e)
      return e.status.admitted
        ? { identity: e.key.name, key: e.key.key }
        : { rejected: `${e.key.name}'s key is not admitted: ${e.status.detail}`, code: 'tee-evidence-failed', signer: e.key.name };
    if (measured.length === 0) return { rejected: 'signed by a key the policy does not admit', code: 'key-not-admitted' };
    let v = lazily.get(fp);
    if (!v) {
      budget.keyHint(fp);
      v = admitByMeasurement(fp, measured, sources, opts.at, budget);
      lazily.set(fp, v);
      const got = await v;
      if ('identity' in got) {
        const n = (admittedCount.get(got.identity) ?? 0) + 1;
        admittedCount.set(got.identity, n);
        keyStatus[got.identity] = {
          admitted: true,
          detail: `admits every key whose key attestation passes its TEE policy (one signer); ${n} key(s) admitted so far`,
        };
      }
    }
    return v;
  };
  return {
    knownKeys: [...policy.keys.values()].map((k) => k.key),
    keyStatus,
    identityFor,
    keysForBundle: async (line) => {
      const keys: NixPublicKey[] = [];
      const why: string[] = [];
      for (const h of new Set(bundleKeyPointers(line))) {
        if (byFp.has(h) || measured.length === 0) continue;
        const v = await identityFor(h);
        if ('identity' in v) keys.push(v.key);
        else why.push(v.rejected);
      }
      return { keys, why };
    },
    teeRequirementOf: (identity) => policy.keys.get(identity)?.tee ?? policy.measured?.get(identity)?.tee,
  };
}

/**
 * Per-trace evidence for one statement (when the identity's requirement asks for it): some
 * piece of trace evidence must bind exactly these statement bytes and pass the same TEE policy.
 */
export async function checkTraceEvidence(
  statementBytes: Uint8Array,
  rdrvHash: string,
  tee: TeeRequirement,
  sources: readonly BundleSource[],
  at: Date | undefined,
  budget: RunBudget,
): Promise<{ ok: true } | { ok: false; detail: string }> {
  const preimage = traceAttestationPreimage(statementBytes);
  const want = reportDataFor(preimage);
  const roots = loadRoots(tee.roots);
  const reasons: string[] = [];
  for (const src of sources) {
    for (const ev of await src.traceEvidence(rdrvHash)) {
      if (!Buffer.from(ev.preimage).equals(preimage)) continue;
      try {
        const v = verifyEvidence(evidenceInput(ev, want, tee), roots, tee.policy, at);
        if (v.ok) return { ok: true };
        budget.evidenceFailed(ev.where);
        reasons.push(
          `${ev.where}: ${v.steps
            .filter((s) => s.ok === false)
            .map((s) => `${s.step}: ${s.detail}`)
            .join('; ')}`,
        );
      } catch (err) {
        rethrowBound(err);
        reasons.push(`${ev.where}: ${decidedOrThrow(err).message}`);
      }
    }
  }
  return { ok: false, detail: reasons.length === 0 ? 'the policy requires per-trace evidence and none binds this statement' : reasons.join(' | ') };
}
