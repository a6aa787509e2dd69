import { BuildtraceError } from '../errors.js';
import { signDetached, verifyDetached, type NixPublicKey, type NixSecretKey } from '../nix/nix-key.js';
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

/**
 * Checks one bundle line against the admitted keys. A key hint only selects a
 * candidate; identity comes from the key whose signature verifies.
 */
export function checkBundle(line: string, keys: readonly NixPublicKey[]): BundleCheck {
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
  const signed = pae(IN_TOTO_PAYLOAD_TYPE, payload);
  let sawAdmitted = false;
  for (const s of env['signatures'] as JsonValue[]) {
    if (!isObject(s) || typeof s['sig'] !== 'string') continue;
    const sig = Buffer.from(s['sig'], 'base64');
    const hint = typeof s['keyid'] === 'string' ? s['keyid'] : undefined;
    for (const k of keys) {
      if (hint !== undefined && hint !== '' && hint !== k.fingerprint) continue;
      sawAdmitted = true;
      if (!verifyDetached(k, signed, sig)) continue;
      let statement: ParsedStatement;
      try {
        statement = parseStatement(parseStrictJson(payload.toString('utf8'), 'statement'));
      } catch (err) {
        return { ok: false, reason: 'malformed', detail: (err as Error).message };
      }
      if (statement.builderId !== builderId(k.fingerprint)) {
        return { ok: false, reason: 'builder-mismatch', detail: `runDetails.builder.id ${statement.builderId} is not the verifying key ${k.name}` };
      }
      return { ok: true, value: { key: k, statement, statementBytes: payload } };
    }
  }
  return sawAdmitted
    ? { ok: false, reason: 'signature-invalid', detail: 'no signature verifies under the admitted key it names' }
    : { ok: false, reason: 'key-not-admitted', detail: 'signed by a key the policy does not admit' };
}
