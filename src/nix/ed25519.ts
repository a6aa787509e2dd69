import { createRequire } from 'node:module';
import { verify, type KeyObject } from 'node:crypto';

/**
 * Pure Ed25519 verification. libsodium (sodium-native, an optional dependency that
 * ships prebuilt binaries) verifies in about half the time of OpenSSL here (58 vs
 * 110 µs), which is most of what trace-verify spends on a large closure; without it,
 * node:crypto does the same check. Both are RFC 8032 verifiers; libsodium also
 * refuses non-canonical encodings, which never come from an honest signer.
 */
interface Sodium {
  crypto_sign_verify_detached(sig: Buffer, msg: Buffer, pk: Buffer): boolean;
}

let sodium: Sodium | null | undefined;

function loadSodium(): Sodium | null {
  if (sodium !== undefined) return sodium;
  if (process.env['BUILDTRACE_NO_SODIUM'] === '1') return (sodium = null);
  try {
    sodium = createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    sodium = null;
  }
  return sodium;
}

export function ed25519Backend(): 'libsodium' | 'openssl' {
  return loadSodium() ? 'libsodium' : 'openssl';
}

export function verifyEd25519(publicRaw: Uint8Array, key: KeyObject, message: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || publicRaw.length !== 32) return false;
  const s = loadSodium();
  if (s) {
    const b = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));
    return s.crypto_sign_verify_detached(b(sig), b(message), b(publicRaw));
  }
  return verify(null, message, key, sig);
}
