import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { BuildtraceError } from '../errors.js';
import { signEd25519ph, verifyEd25519, verifyEd25519Async, verifyEd25519ph, weakPublicKey } from './ed25519.js';

/**
 * Nix key files: `<name>:<base64>`; a secret key is libsodium's 64 bytes
 * (32-byte seed || 32-byte public key), a public key is 32 bytes. Signatures are
 * pure Ed25519 (crypto_sign_detached), written `<name>:<base64 sig>`.
 */

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface NixPublicKey {
  readonly name: string;
  readonly raw: Uint8Array;
  readonly key: KeyObject;
  /** Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (builder.id; the older key hint). */
  readonly fingerprint: string;
  /** OpenSSH fingerprint `SHA256:…`: the key hint bundles carry (sshFingerprint). */
  readonly sshFingerprint: string;
}

export interface NixSecretKey {
  readonly name: string;
  readonly key: KeyObject;
  /** The 32-byte seed (Ed25519ph signing goes through @noble/curves, which takes the seed). */
  readonly seed: Uint8Array;
  readonly publicKey: NixPublicKey;
}

function splitKey(text: string, subject: string): { name: string; bytes: Buffer } {
  const t = text.trim();
  const colon = t.indexOf(':');
  if (colon <= 0) throw new BuildtraceError('KEY_INVALID', `${subject}: a Nix key is "<name>:<base64>"`, { subject });
  const name = t.slice(0, colon);
  const b64 = t.slice(colon + 1);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new BuildtraceError('KEY_INVALID', `${subject}: key material is not base64`, { subject });
  return { name, bytes: Buffer.from(b64, 'base64') };
}

export function spkiFingerprint(raw: Uint8Array): string {
  return createHash('sha256')
    .update(Buffer.concat([SPKI_ED25519_PREFIX, raw]))
    .digest('hex');
}

/**
 * OpenSSH's fingerprint of an Ed25519 key, `SHA256:<unpadded base64 of SHA-256 over the
 * ssh-ed25519 public-key blob>` (RFC 8709 blob: string "ssh-ed25519", string key). It is the key
 * hint go-securesystemslib's DSSE adapter computes (cosign, sigstore-go) and laut's latest
 * profile writes; a hint only picks candidate keys, it is never identity.
 */
export function sshFingerprint(raw: Uint8Array): string {
  const str = (b: Uint8Array): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Whether a bundle's key hint names this key: its SSH fingerprint (what we, laut's latest
 * profile and go-securesystemslib write) or the hex SHA-256 of its DER SPKI (older bundles).
 */
export function hintNames(k: NixPublicKey, hint: string): boolean {
  return hint === k.sshFingerprint || hint === k.fingerprint;
}

/** PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), what cosign's --key and openssl take. */
export function publicKeyToPem(k: NixPublicKey): string {
  return k.key.export({ format: 'pem', type: 'spki' }).toString();
}

/** A Nix public key named `name` from a PEM SubjectPublicKeyInfo holding an Ed25519 key. */
export function publicKeyFromPem(pem: string, name: string, subject = 'PEM key'): NixPublicKey {
  if (!/^[^\s:]+$/.test(name))
    throw new BuildtraceError('KEY_INVALID', `${subject}: a Nix key name is not empty and has no ":" or space: ${JSON.stringify(name)}`, { subject });
  const text = pem.replace(/\r\n/g, '\n').trim();
  if (!/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PUBLIC KEY-----$/.test(text)) {
    throw new BuildtraceError('KEY_INVALID', `${subject}: not one PEM "PUBLIC KEY" (SubjectPublicKeyInfo) block`, { subject });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new BuildtraceError('KEY_INVALID', `${subject}: ${(err as Error).message}`, { subject, cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new BuildtraceError('KEY_INVALID', `${subject}: an ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519 (Nix keys are Ed25519)`, { subject });
  const der = key.export({ format: 'der', type: 'spki' });
  return publicKeyFromRaw(name, der.subarray(SPKI_ED25519_PREFIX.length), subject);
}

/** A public key we may admit: 32 bytes, canonical, on the curve, not of small order (src/nix/ed25519.ts). */
export function publicKeyFromRaw(name: string, raw: Uint8Array, subject = 'public key'): NixPublicKey {
  const weak = weakPublicKey(raw);
  if (weak !== undefined) throw new BuildtraceError('KEY_INVALID', `${subject}: refused Ed25519 public key: ${weak}`, { subject });
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  return { name, raw: Uint8Array.from(raw), key, fingerprint: spkiFingerprint(raw), sshFingerprint: sshFingerprint(raw) };
}

export function parsePublicKey(text: string, subject = 'public key'): NixPublicKey {
  const { name, bytes } = splitKey(text, subject);
  return publicKeyFromRaw(name, bytes, subject);
}

export function parseSecretKey(text: string, subject = 'secret key'): NixSecretKey {
  const { name, bytes } = splitKey(text, subject);
  if (bytes.length !== 64) {
    throw new BuildtraceError('KEY_INVALID', `${subject}: a Nix secret key has 64 bytes (seed and public key), not ${bytes.length}`, { subject });
  }
  const seed = bytes.subarray(0, 32);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const derived = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  if (!derived.equals(bytes.subarray(32))) {
    throw new BuildtraceError('KEY_INVALID', `${subject}: the public half does not belong to the seed (corrupt key file?)`, { subject });
  }
  return { name, key, seed: Uint8Array.from(seed), publicKey: publicKeyFromRaw(name, derived, subject) };
}

export function formatPublicKey(k: NixPublicKey): string {
  return `${k.name}:${Buffer.from(k.raw).toString('base64')}`;
}

export function signDetached(k: NixSecretKey, message: Uint8Array | string): Uint8Array {
  return new Uint8Array(sign(null, typeof message === 'string' ? Buffer.from(message, 'utf8') : message, k.key));
}

export function verifyDetached(k: NixPublicKey, message: Uint8Array | string, sig: Uint8Array): boolean {
  return verifyEd25519(k.raw, k.key, typeof message === 'string' ? Buffer.from(message, 'utf8') : message, sig);
}

/** Ed25519ph (RFC 8032, SHA-512, empty context): laut's SLSA profile signs the DSSE PAE so. */
export function signDetachedPh(k: NixSecretKey, message: Uint8Array): Uint8Array {
  return signEd25519ph(k.seed, message);
}

export function verifyDetachedPh(k: NixPublicKey, message: Uint8Array, sig: Uint8Array): boolean {
  return verifyEd25519ph(k.raw, message, sig);
}

/** The same check in libuv's thread pool, so many signatures verify on all cores. */
export function verifyDetachedAsync(k: NixPublicKey, message: Uint8Array, sig: Uint8Array): Promise<boolean> {
  return verifyEd25519Async(k.raw, k.key, message, sig);
}

/** `<keyName>:<base64 signature>`, as in narinfo `Sig:` lines. */
export function signFingerprint(k: NixSecretKey, fingerprint: string): string {
  return `${k.name}:${Buffer.from(signDetached(k, fingerprint)).toString('base64')}`;
}

/** Verifies a `<keyName>:<base64>` signature; false for other key names or bad signatures. */
export function verifyFingerprintSig(k: NixPublicKey, fingerprint: string, sig: string): boolean {
  const colon = sig.indexOf(':');
  if (colon < 0 || sig.slice(0, colon) !== k.name) return false;
  return verifyDetached(k, fingerprint, Buffer.from(sig.slice(colon + 1), 'base64'));
}
