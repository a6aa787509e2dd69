import { createHash, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * Ed25519 verification, pure and prehashed (RFC 8032), under ONE rule whatever the backend
 * (libsodium, OpenSSL inline or in libuv's pool, @noble/curves; the worker pool and the main
 * thread): libsodium's crypto_sign_verify_detached. A signature (R, S) by public key A
 * verifies iff
 *  - A is a canonical encoding (y < p) of a point that is not of small order (the keys we
 *    admit are refused at load otherwise: weakPublicKey; checked again per signature),
 *  - S < L, and R is not the encoding of a small-order point (either sign bit, y or y + p),
 *  - [S]B - [k]A encodes to exactly the bytes of R (cofactorless; so R is canonical), with
 *    k = SHA-512(R || A || M) mod L, or SHA-512(dom2(1, "") || R || A || SHA-512(M)) for Ed25519ph.
 * The pre-checks run before every backend: OpenSSL alone accepts small-order A and R and a
 * non-canonical A (an all-zero key lets anyone forge about one message in four); with them,
 * all backends agree on the edge cases of "Taming the many EdDSAs" (test/vectors/ed25519-speccheck).
 *
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

/** Which code computed a signature check: inline libsodium or OpenSSL, OpenSSL in libuv's pool, or @noble/curves (Ed25519ph). */
type Ed25519Engine = 'libsodium' | 'openssl' | 'openssl-libuv' | 'noble';
export type Ed25519Tally = Record<Ed25519Engine, number>;

const emptyTally = (): Ed25519Tally => ({ libsodium: 0, openssl: 0, 'openssl-libuv': 0, noble: 0 });
// checks this thread ran (pre-check refusals run no engine), plus what worker threads reported
let tally = emptyTally();
const ran = <T>(engine: Ed25519Engine, result: T): T => {
  tally[engine]++;
  return result;
};

/** The counts since the last take, reset: a worker thread sends them to the main thread (addEd25519Tally). */
export function takeEd25519Tally(): Ed25519Tally {
  const t = tally;
  tally = emptyTally();
  return t;
}

export function addEd25519Tally(t: Ed25519Tally): void {
  for (const k of Object.keys(tally) as Ed25519Engine[]) tally[k] += t[k];
}

/** `BUILDTRACE_ED25519_REPORT=1`: which engines checked how many signatures, so a run can show which backend it took. */
export function ed25519Report(): string {
  return Object.entries(tally)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

export function verifyEd25519(publicRaw: Uint8Array, key: KeyObject, message: Uint8Array, sig: Uint8Array): boolean {
  if (!passesPrechecks(publicRaw, sig)) return false;
  const s = loadSodium();
  if (s) return ran('libsodium', s.crypto_sign_verify_detached(buf(sig), buf(message), buf(publicRaw)));
  return ran('openssl', verify(null, message, key, sig));
}

/** verifyEd25519 in libuv's thread pool (OpenSSL), so many signatures verify on all cores; the same rule. */
export function verifyEd25519Async(publicRaw: Uint8Array, key: KeyObject, message: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (!passesPrechecks(publicRaw, sig)) return Promise.resolve(false);
  return new Promise((resolve) => verify(null, message, key, sig, (err, ok) => resolve(ran('openssl-libuv', err ? false : ok))));
}

/** RFC 8032 dom2(phflag = 1, context = ""): the prefix that separates Ed25519ph from Ed25519. */
const DOM2_PH_EMPTY = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions', 'ascii'), Buffer.from([1, 0])]);

const leToBigInt = (b: Uint8Array): bigint => {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] as number);
  return n;
};

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

const L_BIG = leToBigInt(L);

/**
 * libsodium's blocklist (ge25519_has_small_order): the y coordinates of the eight points of
 * small order, canonical and not (0, 1, two of order 8, p - 1, p, p + 1); the sign bit is ignored.
 */
const SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((h) => Buffer.from(h, 'hex'));

function hasSmallOrder(p: Uint8Array): boolean {
  for (const b of SMALL_ORDER_Y) {
    let d = ((p[31] as number) & 0x7f) ^ (b[31] as number);
    for (let i = 0; i < 31 && d === 0; i++) d |= (p[i] as number) ^ (b[i] as number);
    if (d === 0) return true;
  }
  return false;
}

/** Whether y (the low 255 bits) is below p = 2^255 - 19 (ge25519_is_canonical). */
function canonicalY(p: Uint8Array): boolean {
  if (((p[31] as number) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i > 0; i--) if (p[i] !== 0xff) return true;
  return (p[0] as number) < 0xed;
}

function passesPrechecks(publicRaw: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || publicRaw.length !== 32) return false;
  if (!canonicalY(publicRaw) || hasSmallOrder(publicRaw)) return false;
  return scalarBelowL(sig.subarray(32)) && !hasSmallOrder(sig.subarray(0, 32));
}

const P_BIG = 2n ** 255n - 19n;
const modP = (n: bigint): bigint => ((n % P_BIG) + P_BIG) % P_BIG;
const powP = (b: bigint, e: bigint): bigint => {
  let r = 1n;
  let x = modP(b);
  for (let k = e; k > 0n; k >>= 1n) {
    if (k & 1n) r = (r * x) % P_BIG;
    x = (x * x) % P_BIG;
  }
  return r;
};

/**
 * Why an Ed25519 public key must not be admitted: not a canonical encoding, not a point of
 * the curve, or of small order (anyone can forge for such a key). Undefined for a good key.
 * Run once per key (policy load, TEE admission), so plain BigInt arithmetic suffices.
 */
export function weakPublicKey(raw: Uint8Array): string | undefined {
  if (raw.length !== 32) return `an Ed25519 public key has 32 bytes, not ${raw.length}`;
  if (!canonicalY(raw)) return 'not a canonical encoding (y >= p)';
  if (hasSmallOrder(raw)) return 'a point of small order (anyone can forge signatures that verify with it)';
  // RFC 8032 5.1.3: x^2 = (y^2 - 1) / (d y^2 + 1) must have a root; x = 0 with the sign bit set is refused
  const y = leToBigInt(raw) & ((1n << 255n) - 1n);
  const d = modP(-121665n * powP(121666n, P_BIG - 2n));
  const u = modP(y * y - 1n);
  const v = modP(d * y * y + 1n);
  let x = modP(u * powP(v, 3n) * powP(u * powP(v, 7n), (P_BIG - 5n) / 8n));
  if (modP(v * x * x) !== u) {
    if (modP(v * x * x) !== modP(-u)) return 'not a point of the curve';
    x = modP(x * powP(2n, (P_BIG - 1n) / 4n));
  }
  if (x === 0n && ((raw[31] as number) & 0x80) !== 0) return 'not a canonical encoding (x = 0 with the sign bit set)';
  return undefined;
}

/** k = SHA-512(dom2(1, "") || R || A || SHA-512(M)) (64 bytes, not yet reduced mod L). */
function phChallenge(publicRaw: Uint8Array, message: Uint8Array, R: Uint8Array): Buffer {
  const ph = createHash('sha512').update(message).digest();
  return createHash('sha512').update(DOM2_PH_EMPTY).update(R).update(publicRaw).update(ph).digest();
}

function verifyPhSodium(s: Sodium, publicRaw: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  const R = buf(sig.subarray(0, 32));
  const S = buf(sig.subarray(32));
  const h = phChallenge(publicRaw, message, R);
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
  if (!passesPrechecks(publicRaw, sig)) return false;
  const s = loadSodium();
  if (s) return ran('libsodium', verifyPhSodium(s, publicRaw, message, sig));
  tally.noble++;
  // @noble/curves' own verify is cofactored; the rule is cofactorless: [S]B - [k]A must encode to R
  try {
    const { Point } = nobleEd25519ph();
    const A = Point.fromBytes(Uint8Array.from(publicRaw), false);
    const R = sig.subarray(0, 32);
    const k = leToBigInt(phChallenge(publicRaw, message, R)) % L_BIG;
    const r = Point.BASE.multiplyUnsafe(leToBigInt(sig.subarray(32))).subtract(A.multiplyUnsafe(k));
    return Buffer.from(r.toBytes()).equals(Buffer.from(R));
  } catch {
    return false;
  }
}

/** Ed25519ph signature with a 32-byte seed (the first half of a Nix secret key). */
export function signEd25519ph(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return nobleEd25519ph().sign(message, seed);
}
