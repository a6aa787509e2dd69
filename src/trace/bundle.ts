import { BuildtraceError } from '../errors.js';
import { signDetached, verifyDetached, verifyDetachedAsync, type NixPublicKey, type NixSecretKey } from '../nix/nix-key.js';
import { isObject, parseStrictJson, type JsonValue } from '../util/strict-json.js';
import { IN_TOTO_PAYLOAD_TYPE, pae } from './dsse.js';
import { builderId, parseStatement, type ParsedStatement } from './statement.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/**
 * A Sigstore bundle v0.3 holding one DSSE envelope, signed with pure Ed25519 over
 * the PAE bytes by a Nix key. Returns the bundle as one JSON line (no newline).
 */
export function createBundle(statementBytes: Uint8Array, key: NixSecretKey): string {
  const sig = signDetached(key, pae(IN_TOTO_PAYLOAD_TYPE, statementBytes));
  const hint = key.publicKey.fingerprint;
  return JSON.stringify({
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint } },
    dsseEnvelope: {
      payload: Buffer.from(statementBytes).toString('base64'),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: Buffer.from(sig).toString('base64'), keyid: hint }],
    },
  });
}

export interface VerifiedBundle {
  readonly key: NixPublicKey;
  readonly statement: ParsedStatement;
  readonly statementBytes: Buffer;
}

export type BundleCheck =
  | { readonly ok: true; readonly value: VerifiedBundle }
  | { readonly ok: false; readonly reason: 'malformed' | 'key-not-admitted' | 'signature-invalid' | 'builder-mismatch'; readonly detail: string };

interface Prepared {
  readonly payload: Buffer;
  readonly signed: Buffer;
  readonly candidates: ReadonlyArray<{ readonly key: NixPublicKey; readonly sig: Buffer }>;
}

/** Parses the envelope once and pairs each signature with the admitted key its hint names. */
function prepare(line: string, keys: readonly NixPublicKey[]): Prepared | BundleCheck {
  let env: JsonValue;
  try {
    const b = parseStrictJson(line, 'bundle');
    if (!isObject(b) || b['mediaType'] !== BUNDLE_MEDIA_TYPE) throw new BuildtraceError('BUNDLE_INVALID', `bundle: mediaType is not ${BUNDLE_MEDIA_TYPE}`);
    env = b['dsseEnvelope'] ?? null;
    if (!isObject(env) || env['payloadType'] !== IN_TOTO_PAYLOAD_TYPE || typeof env['payload'] !== 'string' || !Array.isArray(env['signatures'])) {
      throw new BuildtraceError('BUNDLE_INVALID', 'bundle: dsseEnvelope must have payload, payloadType in-toto and signatures');
    }
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  const payload = Buffer.from(env['payload'] as string, 'base64');
  const candidates: { key: NixPublicKey; sig: Buffer }[] = [];
  for (const s of env['signatures'] as JsonValue[]) {
    if (!isObject(s) || typeof s['sig'] !== 'string') continue;
    const sig = Buffer.from(s['sig'], 'base64');
    const hint = typeof s['keyid'] === 'string' ? s['keyid'] : undefined;
    // A hint only selects a candidate; identity comes from the key whose signature verifies.
    for (const key of keys) if (hint === undefined || hint === '' || hint === key.fingerprint) candidates.push({ key, sig });
  }
  return { payload, signed: pae(IN_TOTO_PAYLOAD_TYPE, payload), candidates };
}

function finish(p: Prepared, key: NixPublicKey): BundleCheck {
  let statement: ParsedStatement;
  try {
    statement = parseStatement(parseStrictJson(p.payload.toString('utf8'), 'statement'));
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  if (statement.builderId !== builderId(key.fingerprint)) {
    return { ok: false, reason: 'builder-mismatch', detail: `runDetails.builder.id ${statement.builderId} is not the verifying key ${key.name}` };
  }
  return { ok: true, value: { key, statement, statementBytes: p.payload } };
}

function noneVerified(p: Prepared): BundleCheck {
  return p.candidates.length > 0
    ? { ok: false, reason: 'signature-invalid', detail: 'no signature verifies under the admitted key it names' }
    : { ok: false, reason: 'key-not-admitted', detail: 'signed by a key the policy does not admit' };
}

/**
 * Checks one bundle line against the admitted keys: envelope shape, pure Ed25519
 * over the DSSE PAE, statement shape, and that the statement names the key as builder.
 */
export function checkBundle(line: string, keys: readonly NixPublicKey[]): BundleCheck {
  const p = prepare(line, keys);
  if ('ok' in p) return p;
  for (const c of p.candidates) if (verifyDetached(c.key, p.signed, c.sig)) return finish(p, c.key);
  return noneVerified(p);
}

/** checkBundle with the signature checked in libuv's thread pool (trace-verify over large closures). */
export async function checkBundleAsync(line: string, keys: readonly NixPublicKey[]): Promise<BundleCheck> {
  const p = prepare(line, keys);
  if ('ok' in p) return p;
  for (const c of p.candidates) if (await verifyDetachedAsync(c.key, p.signed, c.sig)) return finish(p, c.key);
  return noneVerified(p);
}
