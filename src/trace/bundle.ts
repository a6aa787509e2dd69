import { BuildtraceError, decidedOrThrow } from '../errors.js';
import {
  hintNames,
  signDetached,
  signDetachedPh,
  verifyDetached,
  verifyDetachedAsync,
  verifyDetachedPh,
  type NixPublicKey,
  type NixSecretKey,
} from '../nix/nix-key.js';
import { isObject, parseStrictJson, type JsonValue } from '../util/strict-json.js';
import { IN_TOTO_PAYLOAD_TYPE, pae } from './dsse.js';
import { checkLautJws, isCompactJws } from './laut-jws.js';
import { BUILD_TYPE_CA, builderId, parseStatement, type ParsedStatement } from './statement.js';

const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/**
 * Media types a reader accepts (protobuf-specs, sigstore_bundle.proto: "the media type
 * … v0.1 and v0.2 … `application/vnd.dev.sigstore.bundle+json;version=0.1|0.2`, v0.3 and
 * later … `application/vnd.dev.sigstore.bundle.v0.3+json`", and 0.3's legacy spelling, which
 * laut also accepts).
 */
const ACCEPTED_BUNDLE_MEDIA_TYPES: ReadonlySet<string> = new Set([
  BUNDLE_MEDIA_TYPE,
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
]);

/**
 * How the DSSE PAE is signed. laut's profile: Ed25519ph (RFC 8032, SHA-512, empty
 * context). Our own build type keeps pure Ed25519 (libsodium verifies it in about 58 µs,
 * the verifier's hot path); a verifier accepts both for it.
 */
export type SignatureScheme = 'ed25519' | 'ed25519ph';

/** The scheme a statement's build type calls for: Ed25519ph for laut's profile, else pure Ed25519. */
function schemeForStatement(statementBytes: Uint8Array): SignatureScheme {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(statementBytes).toString('utf8'));
  } catch {
    return 'ed25519';
  }
  const bd = (v as { predicate?: { buildDefinition?: { buildType?: unknown } } } | null)?.predicate?.buildDefinition;
  return bd?.buildType === BUILD_TYPE_CA ? 'ed25519ph' : 'ed25519';
}

/**
 * A Sigstore bundle v0.3 holding one DSSE envelope, signed by a Nix key over the PAE
 * bytes, with the same key hint in the envelope and the verification material: the key's
 * SSH fingerprint, as laut's latest profile and go-securesystemslib's DSSE adapter (cosign,
 * sigstore-go) compute it; a non-empty keyid that is not that makes cosign --key refuse.
 * Returns the bundle as one JSON line (no newline).
 */
export function createBundle(statementBytes: Uint8Array, key: NixSecretKey, scheme: SignatureScheme = schemeForStatement(statementBytes)): string {
  const signed = pae(IN_TOTO_PAYLOAD_TYPE, statementBytes);
  const sig = scheme === 'ed25519ph' ? signDetachedPh(key, signed) : signDetached(key, signed);
  const hint = key.publicKey.sshFingerprint;
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

interface VerifiedBundle {
  readonly key: NixPublicKey;
  /** The checked claim, whatever form it came in (statement.format says which). */
  readonly statement: ParsedStatement;
  readonly statementBytes: Buffer;
  readonly scheme: SignatureScheme;
}

type BundleFailureReason = 'malformed' | 'key-not-admitted' | 'signature-invalid' | 'builder-mismatch' | 'replayed';

export type BundleCheck =
  | { readonly ok: true; readonly value: VerifiedBundle }
  | { readonly ok: false; readonly reason: BundleFailureReason; readonly detail: string };

interface CheckOptions {
  /** The resolved derivation's hash part the unit must be about (the verifier's own, or the object name). */
  readonly expectedHash?: string;
}

interface Prepared {
  readonly payload: Buffer;
  readonly signed: Buffer;
  readonly sig: Buffer;
  /** Admitted keys in the order to try: those the hint names first, then the others. */
  readonly candidates: readonly NixPublicKey[];
  /** Whether the hint named an admitted key (for the failure reason only). */
  readonly hinted: boolean;
  /** Parsed before any signature check: the build type decides the signature scheme. */
  readonly statement: ParsedStatement | BuildtraceError;
}

function malformed(detail: string): BundleCheck {
  return { ok: false, reason: 'malformed', detail };
}

/** DSSE accepts standard or URL-safe base64, padded or not (as laut's reader does). */
function b64(s: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw new BuildtraceError('BUNDLE_INVALID', `bundle: ${what} is not base64`);
  // Node's base64 decoder reads the URL-safe alphabet too
  return Buffer.from(s, 'base64');
}

interface Envelope {
  readonly payload: Buffer;
  readonly sig: Buffer;
  readonly hint: string;
}

/**
 * The Sigstore shape rules (protobuf-specs): a known media type, verificationMaterial with
 * a public-key hint (the only material a Nix key has), a DSSE envelope of payload type
 * in-toto with exactly one signature (counted before any crypto), and the same hint there.
 */
function parseEnvelope(line: string): Envelope {
  const b = parseStrictJson(line, 'bundle');
  if (!isObject(b)) throw new BuildtraceError('BUNDLE_INVALID', 'bundle: not a JSON object');
  const mt = b['mediaType'];
  if (typeof mt !== 'string' || !ACCEPTED_BUNDLE_MEDIA_TYPES.has(mt))
    throw new BuildtraceError('BUNDLE_INVALID', `bundle: mediaType ${JSON.stringify(mt)} is not a Sigstore bundle media type`);
  const vm = b['verificationMaterial'];
  if (!isObject(vm)) throw new BuildtraceError('BUNDLE_INVALID', 'bundle: verificationMaterial is required');
  const pk = vm['publicKey'];
  if (!isObject(pk) || typeof pk['hint'] !== 'string')
    throw new BuildtraceError('BUNDLE_INVALID', 'bundle: verificationMaterial.publicKey.hint is required (Nix keys have no certificate)');
  const env: JsonValue = b['dsseEnvelope'] ?? null;
  if (!isObject(env) || env['payloadType'] !== IN_TOTO_PAYLOAD_TYPE || typeof env['payload'] !== 'string' || !Array.isArray(env['signatures'])) {
    throw new BuildtraceError('BUNDLE_INVALID', 'bundle: dsseEnvelope must have payload, payloadType in-toto and signatures');
  }
  const sigs = env['signatures'];
  if (sigs.length !== 1)
    throw new BuildtraceError('BUNDLE_INVALID', `bundle: the DSSE envelope has ${sigs.length} signatures; a Sigstore bundle has exactly one`);
  const s = sigs[0];
  if (!isObject(s) || typeof s['sig'] !== 'string') throw new BuildtraceError('BUNDLE_INVALID', 'bundle: dsseEnvelope.signatures[0].sig is missing');
  const keyid = s['keyid'] ?? '';
  if (keyid !== pk['hint']) throw new BuildtraceError('BUNDLE_INVALID', 'bundle: the envelope keyid and verificationMaterial.publicKey.hint differ');
  return { payload: b64(env['payload'], 'payload'), sig: b64(s['sig'], 'signature'), hint: pk['hint'] };
}

function prepare(line: string, keys: readonly NixPublicKey[]): Prepared | BundleCheck {
  let e: Envelope;
  try {
    e = parseEnvelope(line);
  } catch (err) {
    return malformed(decidedOrThrow(err).message);
  }
  let statement: ParsedStatement | BuildtraceError;
  try {
    statement = parseStatement(parseStrictJson(e.payload.toString('utf8'), 'statement'));
  } catch (err) {
    statement = decidedOrThrow(err);
  }
  // A hint only orders the candidates (SSH fingerprint, hex SPKI, empty or anything else);
  // identity comes from the admitted key whose signature verifies. Every admitted key is tried,
  // so a hint in a form we do not know never hides a key (the policy bounds how many there are).
  const named = keys.filter((k) => hintNames(k, e.hint));
  const candidates = named.length === 0 ? keys : [...named, ...keys.filter((k) => !named.includes(k))];
  return { payload: e.payload, signed: pae(IN_TOTO_PAYLOAD_TYPE, e.payload), sig: e.sig, candidates, hinted: named.length > 0, statement };
}

/** laut's profile must be Ed25519ph; our build type may be either (pure first: it is what we write). */
function schemesFor(p: Prepared): readonly SignatureScheme[] {
  return !(p.statement instanceof BuildtraceError) && p.statement.format === 'laut-slsa' ? ['ed25519ph'] : ['ed25519', 'ed25519ph'];
}

function finish(p: Prepared, key: NixPublicKey, scheme: SignatureScheme, opts: CheckOptions): BundleCheck {
  const statement = p.statement;
  if (statement instanceof BuildtraceError) return malformed(statement.message);
  if (statement.builderId !== builderId(key.fingerprint)) {
    return { ok: false, reason: 'builder-mismatch', detail: `runDetails.builder.id ${statement.builderId} is not the verifying key ${key.name}` };
  }
  if (opts.expectedHash !== undefined && statement.resolvedInputHash !== opts.expectedHash) {
    return { ok: false, reason: 'replayed', detail: `statement is about resolved derivation ${statement.resolvedInputHash}, not ${opts.expectedHash}` };
  }
  return { ok: true, value: { key, statement, statementBytes: p.payload, scheme } };
}

function noneVerified(p: Prepared): BundleCheck {
  return p.hinted
    ? { ok: false, reason: 'signature-invalid', detail: 'no signature verifies under the admitted key it names' }
    : { ok: false, reason: 'key-not-admitted', detail: 'signed by a key the policy does not admit (no admitted key verifies it)' };
}

function checkJws(unit: string, keys: readonly NixPublicKey[], opts: CheckOptions): BundleCheck {
  const c = checkLautJws(unit, keys, opts.expectedHash);
  if (!c.ok) return c;
  return {
    ok: true,
    value: { key: c.value.key, statement: c.value.claim, statementBytes: Buffer.from(unit.split('.')[1] as string, 'base64url'), scheme: 'ed25519' },
  };
}

/**
 * Checks one unit of a trace object against the admitted keys: a Sigstore bundle line
 * (envelope rules, Ed25519ph for laut's profile, Ed25519 or Ed25519ph for ours, statement
 * shape, builder = verifying key) or one laut compact JWS.
 */
export function checkBundle(line: string, keys: readonly NixPublicKey[], opts: CheckOptions = {}): BundleCheck {
  if (isCompactJws(line)) return checkJws(line, keys, opts);
  const p = prepare(line, keys);
  if ('ok' in p) return p;
  for (const scheme of schemesFor(p)) {
    for (const key of p.candidates) {
      const ok = scheme === 'ed25519ph' ? verifyDetachedPh(key, p.signed, p.sig) : verifyDetached(key, p.signed, p.sig);
      if (ok) return finish(p, key, scheme, opts);
    }
  }
  return noneVerified(p);
}

/** checkBundle with pure Ed25519 checked in libuv's thread pool (trace-verify over large closures). */
export async function checkBundleAsync(line: string, keys: readonly NixPublicKey[], opts: CheckOptions = {}): Promise<BundleCheck> {
  if (isCompactJws(line)) return checkJws(line, keys, opts);
  const p = prepare(line, keys);
  if ('ok' in p) return p;
  for (const scheme of schemesFor(p)) {
    for (const key of p.candidates) {
      const ok = scheme === 'ed25519ph' ? verifyDetachedPh(key, p.signed, p.sig) : await verifyDetachedAsync(key, p.signed, p.sig);
      if (ok) return finish(p, key, scheme, opts);
    }
  }
  return noneVerified(p);
}
