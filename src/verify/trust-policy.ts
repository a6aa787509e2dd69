import { dirname, resolve } from 'node:path';
import { BuildtraceError } from '../errors.js';
import { parsePublicKey, type NixPublicKey } from '../nix/nix-key.js';
import { referenceValueProblem, type TeePolicy } from '../tee/tee-policy.js';
import { readTextInput } from '../util/read-input.js';
import { validateAgainst } from '../util/schema.js';
import { parseStrictJson } from '../util/strict-json.js';
import type { TrustNode } from './trust-tree.js';

/** What a key's (or a measured identity's) TEE evidence must show. */
export interface TeeRequirement {
  readonly roots: string;
  readonly policy: TeePolicy;
  /** Intel PCS collateral directory for TDX evidence. */
  readonly collateral?: string;
  /** SEV-SNP: AMD's CRL for the product (DER file, signed by the ARK). */
  readonly crl?: string;
  /** Every trace must also carry per-trace evidence binding its statement. */
  readonly requirePerTraceEvidence?: boolean;
}

/**
 * A key's lifecycle. Retired (rotated out) and revoked (compromised) keys' claims never count:
 * the key is absent wherever the trust tree names it. A time cut-off ("claims by K count only
 * if they existed before T") needs time nobody chose for themselves: `cutoff` is reserved in
 * the schema for a witnessed transparency log's inclusion time and refused at load until
 * buildtrace reads logs (see claimCounts).
 */
export type KeyLifecycle = 'active' | 'retired' | 'revoked';

export interface AdmittedKey {
  readonly name: string;
  readonly key: NixPublicKey;
  readonly tee?: TeeRequirement;
  /** Absent means active. */
  readonly status?: KeyLifecycle;
  /** The policy name of the key this one replaces (retired or revoked). */
  readonly replaces?: string;
}

/**
 * A policy entry without a public key: it admits every key whose key attestation passes its
 * TEE requirement (a TEE builder has a fresh key each boot), and all of them are this one
 * signer identity.
 */
export interface MeasuredIdentity {
  readonly name: string;
  readonly tee: TeeRequirement;
}

export interface TrustPolicy {
  readonly keys: ReadonlyMap<string, AdmittedKey>;
  readonly measured: ReadonlyMap<string, MeasuredIdentity>;
  readonly trust: TrustNode;
  readonly maxResolutions: number;
  readonly file: string;
}

interface PolicyJson {
  keys: Record<
    string,
    {
      publicKey?: string;
      status?: KeyLifecycle;
      replaces?: string;
      cutoff?: { log: string; before: string };
      tee?: { roots: string; policy?: TeePolicy; collateral?: string; crl?: string; requirePerTraceEvidence?: boolean };
    }
  >;
  trust: TrustNode;
  maxResolutions?: number;
}

function fail(file: string, msg: string): never {
  throw new BuildtraceError('POLICY_INVALID', `${file}: ${msg}`, { subject: file });
}

export function loadTrustPolicy(file: string): TrustPolicy {
  const p = validateAgainst<PolicyJson>('trust-policy.schema.json', parseStrictJson(readTextInput(file, 'policy'), file), file, 'POLICY_INVALID');
  const keys = new Map<string, AdmittedKey>();
  const byFp = new Map<string, string>();
  const measured = new Map<string, MeasuredIdentity>();
  for (const [name, k] of Object.entries(p.keys)) {
    const teeWhy = k.tee ? referenceValueProblem(k.tee.policy ?? {}) : undefined;
    if (teeWhy !== undefined) fail(file, `keys.${name}.tee.policy ${teeWhy}`);
    const tee: TeeRequirement | undefined = k.tee
      ? {
          roots: resolve(dirname(file), k.tee.roots),
          policy: k.tee.policy ?? { allowDebug: false },
          ...(k.tee.collateral !== undefined ? { collateral: resolve(dirname(file), k.tee.collateral) } : {}),
          ...(k.tee.crl !== undefined ? { crl: resolve(dirname(file), k.tee.crl) } : {}),
          ...(k.tee.requirePerTraceEvidence !== undefined ? { requirePerTraceEvidence: k.tee.requirePerTraceEvidence } : {}),
        }
      : undefined;
    if (k.cutoff !== undefined)
      fail(
        file,
        `keys.${name}.cutoff is reserved for a time a witnessed transparency log provides; buildtrace does not read logs yet, and a time the signer wrote is never used (mark the key retired or revoked instead)`,
      );
    if (k.publicKey === undefined) {
      if (k.status !== undefined || k.replaces !== undefined)
        fail(file, `keys.${name}: status and replaces apply to a key with a publicKey; to stop trusting a TEE identity, remove it from the trust tree`);
      if (!tee) fail(file, `keys.${name} has neither a publicKey nor a tee requirement that admits keys by measurement`);
      measured.set(name, { name, tee });
      continue;
    }
    let key: NixPublicKey;
    try {
      key = parsePublicKey(k.publicKey, `keys.${name}.publicKey`);
    } catch (err) {
      fail(file, (err as Error).message);
    }
    const dup = byFp.get(key.fingerprint);
    // One key under two names would let one builder vote twice.
    if (dup !== undefined) fail(file, `keys.${name} and keys.${dup} are the same public key`);
    byFp.set(key.fingerprint, name);
    keys.set(name, {
      name,
      key,
      ...(tee ? { tee } : {}),
      ...(k.status !== undefined && k.status !== 'active' ? { status: k.status } : {}),
      ...(k.replaces !== undefined ? { replaces: k.replaces } : {}),
    });
  }
  for (const k of keys.values()) {
    if (k.replaces === undefined) continue;
    const old = keys.get(k.replaces);
    if (old === undefined) fail(file, `keys.${k.name}.replaces names ${JSON.stringify(k.replaces)}, which is not in keys`);
    if (old.name === k.name) fail(file, `keys.${k.name}.replaces names itself`);
    // an active replaced key would let one builder vote with its old and its new key
    if (!isRetired(old)) fail(file, `keys.${k.name} replaces ${old.name}, so keys.${old.name}.status must be "retired" or "revoked"`);
  }
  // A key counts once per derivation: naming it twice (2 of [A, A], or 2 of [A, 1 of [A, B]])
  // would let one signer meet a threshold meant for two. Iterative: the tree comes from a file.
  const named = new Map<string, string>();
  const todo: [TrustNode, string][] = [[p.trust, 'trust']];
  while (todo.length > 0) {
    const [n, path] = todo.pop() as [TrustNode, string];
    if (typeof n === 'string') {
      if (!keys.has(n) && !measured.has(n)) fail(file, `${path} names key ${JSON.stringify(n)}, which is not in keys`);
      const first = named.get(n);
      if (first !== undefined)
        fail(file, `${first} and ${path} both name key ${JSON.stringify(n)}; a key may appear only once in the trust tree (it counts once per derivation)`);
      named.set(n, path);
      continue;
    }
    if (n.threshold > n.of.length) fail(file, `${path}: threshold ${n.threshold} is more than its ${n.of.length} members`);
    for (let i = n.of.length - 1; i >= 0; i--) todo.push([n.of[i] as TrustNode, `${path}.of[${i}]`]);
  }
  return { keys, measured, trust: p.trust, maxResolutions: p.maxResolutions ?? 256, file };
}

/** Whether a key's claims are out of the count by its lifecycle (retired or revoked). */
function isRetired(k: AdmittedKey): boolean {
  return k.status === 'retired' || k.status === 'revoked';
}

/**
 * Whether a claim by this key counts. Today: only an active key's. The place for the
 * reserved log cut-off: `loggedBefore` will be the witnessed inclusion time a transparency
 * log proves for the claim (never a time the signer wrote), checked against the key's cutoff.
 */
export function claimCounts(k: AdmittedKey, _loggedBefore?: Date): boolean {
  return !isRetired(k);
}
