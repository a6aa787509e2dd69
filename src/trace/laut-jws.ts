import { BuildtraceError, decidedOrThrow } from '../errors.js';
import { parseDerivation } from '../nix/aterm.js';
import { parseHash } from '../nix/hash.js';
import { signDetached, verifyDetached, type NixPublicKey, type NixSecretKey } from '../nix/nix-key.js';
import { derivationStorePath } from '../nix/resolve.js';
import { isObject, parseStrictJson, type JsonValue } from '../util/strict-json.js';
import { builderId, isStorePath, type TraceClaim } from './statement.js';

/**
 * laut's JWS traces (laut-sign/src/sign/jws.rs, laut-verify/src/signature_verify.rs):
 * a cache object `{"signatures":[<compact JWS>, …]}`; each JWS is EdDSA (pure Ed25519
 * over the ASCII `b64url(header) "." b64url(payload)`), header `kid` =
 * `<key name>:<first 16 hex of SHA-256(DER SPKI)>`, payload `in.rdrv_aterm_ca` (the rdrv's
 * 32-char hash part) and `out.nix.<output>.{path, hash: "sha256:<nix32 NAR hash>"}`.
 * Python-era signatures add `typ: JWT` and the payload fields `in.rdrv_json` and `in.debug`.
 */

/** More signatures than any real container holds; checked before any crypto. */
const MAX_JWS_PER_CONTAINER = 4096;

const B64URL = /^[A-Za-z0-9_-]*$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const NIX32_HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;
const CONTAINER_START = /^\s*\{\s*"signatures"\s*:/;

export function isCompactJws(unit: string): boolean {
  return COMPACT_JWS.test(unit);
}

function b64urlDecode(s: string, what: string): Buffer {
  // strict: no padding, url alphabet, and no bits a re-encoding would not give back
  const b = Buffer.from(s, 'base64url');
  if (!B64URL.test(s) || b.toString('base64url') !== s) throw new BuildtraceError('BUNDLE_INVALID', `laut JWS: ${what} is not unpadded base64url`);
  return b;
}

/**
 * A laut container's signatures, or undefined when `text` is not a well-formed container
 * (then its lines are read as they are, and each is judged on its own). Throws only when a
 * container holds more signatures than MAX_JWS_PER_CONTAINER: checked before any crypto.
 */
export function parseLautContainer(text: string, where = 'laut container'): string[] | undefined {
  if (!CONTAINER_START.test(text)) return undefined;
  let v: JsonValue;
  try {
    v = parseStrictJson(text, where);
  } catch (err) {
    decidedOrThrow(err);
    return undefined;
  }
  const sigs = isObject(v) ? v['signatures'] : undefined;
  if (!Array.isArray(sigs)) return undefined;
  if (sigs.length > MAX_JWS_PER_CONTAINER) {
    throw new BuildtraceError('BUNDLE_INVALID', `${where}: ${sigs.length} signatures, more than the limit of ${MAX_JWS_PER_CONTAINER}`, { subject: where });
  }
  return sigs.every((s): s is string => typeof s === 'string') ? sigs : undefined;
}

/**
 * The units of one `traces/<hash>` object: each JWS of a laut container, else each non-empty
 * line (JSON Lines of Sigstore bundles). A container followed by appended lines (what an
 * older buildtrace wrote into laut's object) still yields both.
 */
export function splitTraceObject(text: string, where = 'trace object'): string[] {
  const whole = parseLautContainer(text, where);
  if (whole) return whole;
  const lines = text.split('\n');
  const out: string[] = [];
  let i = 0;
  // a (pretty-printed) container first, then lines someone appended: find where it closes
  if (CONTAINER_START.test(text)) {
    for (let end = 0, tries = 0; end < lines.length && tries < 64; end++) {
      if (!(lines[end] as string).trimEnd().endsWith('}')) continue;
      tries++;
      const c = parseLautContainer(lines.slice(0, end + 1).join('\n'), where);
      if (c) {
        out.push(...c);
        i = end + 1;
        break;
      }
    }
  }
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    const c = parseLautContainer(line, where);
    if (c) out.push(...c);
    else out.push(line);
  }
  return out;
}

interface LautJwsHeader {
  readonly kid: string;
  readonly kidName: string;
  readonly kidFingerprint16: string;
  readonly legacyTyp: boolean;
}

type LautJwsFailure = { readonly ok: false; readonly reason: 'malformed' | 'key-not-admitted' | 'signature-invalid' | 'replayed'; readonly detail: string };

interface LautJwsClaim {
  readonly key: NixPublicKey;
  readonly header: LautJwsHeader;
  readonly claim: TraceClaim;
  /** The castore entries laut recorded (base64url), per output; not used as evidence. */
  readonly castoreEntries: ReadonlyMap<string, string>;
}

function fail(reason: LautJwsFailure['reason'], detail: string): LautJwsFailure {
  return { ok: false, reason, detail };
}

function parseHeader(b: Buffer): LautJwsHeader {
  const h = parseStrictJson(b.toString('utf8'), 'laut JWS header');
  if (!isObject(h)) throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS header is not an object');
  if (h['alg'] !== 'EdDSA') throw new BuildtraceError('BUNDLE_INVALID', `laut JWS header: alg ${JSON.stringify(h['alg'])} is not EdDSA`);
  if (h['crv'] !== undefined && h['crv'] !== 'Ed25519') throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS header: crv is not Ed25519');
  if (h['type'] !== undefined && h['type'] !== 'laut') throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS header: type is not laut');
  if (h['typ'] !== undefined && h['typ'] !== 'JWT') throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS header: typ is not JWT');
  const kid = h['kid'];
  const m = typeof kid === 'string' ? /^(.*):([0-9a-f]{16})$/.exec(kid) : null;
  if (!m || m[1] === undefined || m[2] === undefined) throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS header: kid is not "<key name>:<16 hex>"');
  return { kid: kid as string, kidName: m[1], kidFingerprint16: m[2], legacyTyp: h['typ'] === 'JWT' };
}

function str(o: JsonValue | undefined, k: string, where: string): string {
  const v = isObject(o) ? o[k] : undefined;
  if (typeof v !== 'string') throw new BuildtraceError('BUNDLE_INVALID', `laut JWS payload: ${where}.${k} is missing or not a string`);
  return v;
}

/** The payload as a claim (shape only; the signature is checked by the caller first). */
function parsePayload(b: Buffer, key: NixPublicKey): { claim: TraceClaim; castore: Map<string, string>; preimage: { aterm: string } | undefined } {
  const p = parseStrictJson(b.toString('utf8'), 'laut JWS payload');
  const inn = isObject(p) ? p['in'] : undefined;
  const h = str(inn, 'rdrv_aterm_ca', 'in');
  if (!NIX32_HASH_PART.test(h)) throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS payload: in.rdrv_aterm_ca is not a 32-char Nix32 hash');
  const out = isObject(p) ? p['out'] : undefined;
  const nix = isObject(out) ? out['nix'] : undefined;
  if (!isObject(nix) || Object.keys(nix).length === 0) throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS payload: out.nix is not a non-empty object');
  const outputs = new Map<string, { path: string; sha256: string; narSize: number | undefined }>();
  for (const [name, o] of Object.entries(nix)) {
    if (name === '') throw new BuildtraceError('BUNDLE_INVALID', 'laut JWS payload: an output name is empty');
    const path = str(o, 'path', `out.nix.${name}`);
    if (!isStorePath(path)) throw new BuildtraceError('BUNDLE_INVALID', `laut JWS payload: out.nix.${name}.path is not a /nix/store path`);
    const hashText = str(o, 'hash', `out.nix.${name}`);
    let sha256: string;
    try {
      const hash = parseHash(hashText);
      if (hash.algo !== 'sha256') throw new BuildtraceError('HASH_INVALID', 'not SHA-256');
      sha256 = Buffer.from(hash.bytes).toString('hex');
    } catch (err) {
      decidedOrThrow(err);
      throw new BuildtraceError('BUNDLE_INVALID', `laut JWS payload: out.nix.${name}.hash is not a sha256 NAR hash`);
    }
    outputs.set(name, { path, sha256, narSize: undefined });
  }
  const castore = new Map<string, string>();
  const ce = isObject(out) ? out['castore-entry'] : undefined;
  if (isObject(ce)) for (const [n, v] of Object.entries(ce)) if (typeof v === 'string') castore.set(n, v);
  const debug = isObject(inn) ? inn['debug'] : undefined;
  const pre = isObject(debug) ? debug['rdrv_aterm_ca_preimage'] : undefined;
  return {
    claim: { format: 'laut-jws', kind: 'ca', inputsListed: false, resolvedInputHash: h, builderId: builderId(key.fingerprint), outputs, inputs: [] },
    castore,
    preimage: typeof pre === 'string' ? { aterm: pre } : undefined,
  };
}

/** The resolved ATerm laut shipped must hash to the rdrv it names. */
function preimageHash(aterm: string): string {
  // JSON carries the ATerm as Unicode; Nix hashes its UTF-8 bytes (our parser reads latin1)
  const latin1 = Buffer.from(aterm, 'utf8').toString('latin1');
  return derivationStorePath(parseDerivation(latin1, 'laut rdrv preimage'), latin1).hashPart;
}

/**
 * Checks one compact JWS against admitted keys. `kid` only selects candidates (keys whose
 * SPKI fingerprint starts with its 16 hex); identity is the key whose signature verifies.
 * With `expectedHash` (the rdrv the verifier computed, or the object's name), the payload
 * must be about that rdrv; a debug preimage, when present, must hash to it as well.
 */
export function checkLautJws(jws: string, keys: readonly NixPublicKey[], expectedHash?: string): { ok: true; value: LautJwsClaim } | LautJwsFailure {
  if (!COMPACT_JWS.test(jws)) return fail('malformed', 'not a compact JWS (three base64url parts)');
  const [hb64, pb64, sb64] = jws.split('.') as [string, string, string];
  let header: LautJwsHeader;
  let sig: Buffer;
  try {
    header = parseHeader(b64urlDecode(hb64, 'header'));
    sig = b64urlDecode(sb64, 'signature');
    b64urlDecode(pb64, 'payload');
  } catch (err) {
    return fail('malformed', decidedOrThrow(err).message);
  }
  if (sig.length !== 64) return fail('malformed', `laut JWS: signature has ${sig.length} bytes, not 64`);
  const candidates = keys.filter((k) => k.fingerprint.startsWith(header.kidFingerprint16));
  if (candidates.length === 0) return fail('key-not-admitted', `signed by ${header.kid}, a key the policy does not admit`);
  const signingInput = Buffer.from(`${hb64}.${pb64}`, 'ascii');
  const key = candidates.find((k) => verifyDetached(k, signingInput, sig));
  if (!key) return fail('signature-invalid', `no admitted key matching kid ${header.kid} verifies the signature`);
  let parsed: ReturnType<typeof parsePayload>;
  try {
    parsed = parsePayload(Buffer.from(pb64, 'base64url'), key);
  } catch (err) {
    return fail('malformed', decidedOrThrow(err).message);
  }
  const h = parsed.claim.resolvedInputHash;
  if (expectedHash !== undefined && h !== expectedHash) return fail('replayed', `in.rdrv_aterm_ca ${h} is not the resolved derivation ${expectedHash}`);
  if (parsed.preimage) {
    let ph: string;
    try {
      ph = preimageHash(parsed.preimage.aterm);
    } catch (err) {
      return fail('malformed', `in.debug.rdrv_aterm_ca_preimage: ${decidedOrThrow(err).message}`);
    }
    if (ph !== h) return fail('malformed', `in.debug.rdrv_aterm_ca_preimage hashes to ${ph}, not in.rdrv_aterm_ca ${h}`);
  }
  return { ok: true, value: { key, header, claim: parsed.claim, castoreEntries: parsed.castore } };
}

/** laut's kid for a key: `<name>:<first 16 hex of its SPKI fingerprint>`. */
export function lautKid(k: NixPublicKey): string {
  return `${k.name}:${k.fingerprint.slice(0, 16)}`;
}

/**
 * Signs a payload in laut's current JWS form (header keys sorted as laut's serde writes
 * them; `typ: JWT` with `legacyTyp`, as the Python era did). For tests and interop vectors.
 */
export function signLautJws(payload: JsonValue, key: NixSecretKey, legacyTyp = false): string {
  const header: { [k: string]: JsonValue } = { alg: 'EdDSA', crv: 'Ed25519', detachHash: 'nix-ca-path', kid: lautKid(key.publicKey) };
  if (legacyTyp) header['typ'] = 'JWT';
  header['type'] = 'laut';
  header['v'] = '2';
  const h = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const p = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const sig = Buffer.from(signDetached(key, Buffer.from(`${h}.${p}`, 'ascii'))).toString('base64url');
  return `${h}.${p}.${sig}`;
}
