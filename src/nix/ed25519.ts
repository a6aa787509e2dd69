import { createHash, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * Ed25519 verification, pure and prehashed (RFC 8032).
 *
 * Pure: libsodium (sodium-native, an optional dependency that ships prebuilt binaries)
 * verifies in about half the time of OpenSSL here (58 vs 110 µs), which is most of what
 * trace-verify spends on a large closure; without it, node:crypto does the same check.
 *
 * Ed25519ph (SHA-512, empty context; laut's SLSA profile): neither Node 20's OpenSSL 3.0
 * nor sodium-native exposes it, and @noble/curves takes about 2.6 ms per verification
 * on this machine, 40 times the pure check. So with libsodium present we verify
 * Ed25519ph from libsodium's group operations: k = SHA-512(dom2 || R || A || SHA-512(M))
 * mod L, then R must equal [S]B - [k]A byte for byte (cofactorless, strict: S < L, A not
 * of small order, R canonical), about 0.15 ms. @noble/curves is the fallback and the
 * signer (signing happens once per build).
 */
interface Sodium {
  crypto_sign_verify_detached(sig: Buffer, msg: Buffer, pk: Buffer): boolean;
  crypto_core_ed25519_scalar_reduce(r: Buffer, s: Buffer): void;
  crypto_core_ed25519_sub(r: Buffer, p: Buffer, q: Buffer): void;
  crypto_scalarmult_ed25519_base_noclamp(q: Buffer, n: Buffer): void;
  crypto_scalarmult_ed25519_noclamp(q: Buffer, n: Buffer, p: Buffer): void;
}

let sodium: Sodium | null | undefined;

type Noble = typeof import('@noble/curves/ed25519.js');
let noble: Noble | undefined;
// loaded when first needed (signing, or verifying without libsodium): importing it costs a
// verifier about 0.1 s of start-up on each thread (require of an ES module: Node >= 20.19)
const nobleEd25519ph = (): Noble['ed25519ph'] => {
  noble ??= createRequire(import.meta.url)('@noble/curves/ed25519.js') as Noble;
  return noble.ed25519ph;
};

function loadSodium(): Sodium | null {
  if (sodium !== undefined) return sodium;
  // biome-ignore lint/suspicious/noAssignInExpressions: memoise the absent backend
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

const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

export function verifyEd25519(publicRaw: Uint8Array, key: KeyObject, message: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || publicRaw.length !== 32) return false;
  const s = loadSodium();
  if (s) return s.crypto_sign_verify_detached(buf(sig), buf(message), buf(publicRaw));
  return verify(null, message, key, sig);
}

/** RFC 8032 dom2(phflag = 1, context = ""): the prefix that separates Ed25519ph from Ed25519. */
const DOM2_PH_EMPTY = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions', 'ascii'), Buffer.from([1, 0])]);

/** The group order L, little-endian, for the S < L check. */
const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

function scalarBelowL(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = s[i] as number;
    const b = L[i] as number;
    if (a !== b) return a < b;
  }
  return false;
}

function verifyPhSodium(s: Sodium, publicRaw: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  const R = buf(sig.subarray(0, 32));
  const S = buf(sig.subarray(32));
  if (!scalarBelowL(S)) return false;
  const ph = createHash('sha512').update(message).digest();
  const h = createHash('sha512').update(DOM2_PH_EMPTY).update(R).update(publicRaw).update(ph).digest();
  const k = Buffer.alloc(32);
  s.crypto_core_ed25519_scalar_reduce(k, h);
  const sB = Buffer.alloc(32);
  const kA = Buffer.alloc(32);
  const r = Buffer.alloc(32);
  try {
    // libsodium refuses small-order A and identity results: those throw, and fail here
    s.crypto_scalarmult_ed25519_base_noclamp(sB, S);
    s.crypto_scalarmult_ed25519_noclamp(kA, k, buf(publicRaw));
    s.crypto_core_ed25519_sub(r, sB, kA);
  } catch {
    return false;
  }
  return r.equals(R);
}

/** Ed25519ph (RFC 8032, SHA-512 prehash, empty context) over `message`. */
export function verifyEd25519ph(publicRaw: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || publicRaw.length !== 32) return false;
  const s = loadSodium();
  if (s) return verifyPhSodium(s, publicRaw, message, sig);
  try {
    return nobleEd25519ph().verify(sig, message, publicRaw, { zip215: false });
  } catch {
    return false;
  }
}

/** Ed25519ph signature with a 32-byte seed (the first half of a Nix secret key). */
export function signEd25519ph(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return nobleEd25519ph().sign(message, seed);
}
