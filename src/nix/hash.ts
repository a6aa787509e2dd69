import { hash as oneShot } from 'node:crypto';
import { BuildtraceError } from '../errors.js';
import { nix32Decode, nix32Encode, nix32EncodedLength } from './nix32.js';

type HashAlgo = 'md5' | 'sha1' | 'sha256' | 'sha512';
const HASH_SIZES: Readonly<Record<HashAlgo, number>> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

export interface Hash {
  readonly algo: HashAlgo;
  readonly bytes: Uint8Array;
}

type HashEncoding = 'base16' | 'nix32' | 'base64' | 'sri';

function isAlgo(s: string): s is HashAlgo {
  return s === 'md5' || s === 'sha1' || s === 'sha256' || s === 'sha512';
}

function decodeBody(algo: HashAlgo, body: string, what: string): Uint8Array {
  const size = HASH_SIZES[algo];
  if (body.length === size * 2 && /^[0-9a-fA-F]+$/.test(body)) return Uint8Array.from(Buffer.from(body, 'hex'));
  if (body.length === nix32EncodedLength(size)) {
    try {
      return nix32Decode(body, size);
    } catch (err) {
      throw new BuildtraceError('HASH_INVALID', `${what}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (body.length === Math.ceil(size / 3) * 4 && /^[A-Za-z0-9+/]+=*$/.test(body)) {
    const bytes = Buffer.from(body, 'base64');
    if (bytes.length === size && bytes.toString('base64') === body) return Uint8Array.from(bytes);
  }
  throw new BuildtraceError('HASH_INVALID', `${what}: ${JSON.stringify(body)} is not a ${algo} hash in base16, Nix32 or base64`);
}

/**
 * Parses `algo:<base16|nix32|base64>`, SRI `algo-<base64>`, or a bare body when
 * `defaultAlgo` is given (as in .drv outputs, where the algo is a separate field).
 */
export function parseHash(text: string, defaultAlgo?: HashAlgo): Hash {
  const what = 'hash';
  const sri = /^(md5|sha1|sha256|sha512)-(.*)$/.exec(text);
  if (sri && sri[1] !== undefined && sri[2] !== undefined && isAlgo(sri[1])) {
    const algo = sri[1];
    const bytes = Buffer.from(sri[2], 'base64');
    if (bytes.length !== HASH_SIZES[algo] || bytes.toString('base64') !== sri[2]) {
      throw new BuildtraceError('HASH_INVALID', `${what}: SRI hash ${JSON.stringify(text)} has a bad base64 body`);
    }
    return { algo, bytes: Uint8Array.from(bytes) };
  }
  const colon = text.indexOf(':');
  if (colon >= 0) {
    const algo = text.slice(0, colon);
    if (!isAlgo(algo)) throw new BuildtraceError('HASH_INVALID', `${what}: unknown hash algorithm ${JSON.stringify(algo)}`);
    return { algo, bytes: decodeBody(algo, text.slice(colon + 1), what) };
  }
  if (defaultAlgo === undefined) {
    throw new BuildtraceError('HASH_INVALID', `${what}: ${JSON.stringify(text)} names no algorithm`);
  }
  return { algo: defaultAlgo, bytes: decodeBody(defaultAlgo, text, what) };
}

export function formatHash(hash: Hash, encoding: HashEncoding, withAlgo = true): string {
  const buf = Buffer.from(hash.bytes.buffer, hash.bytes.byteOffset, hash.bytes.byteLength);
  switch (encoding) {
    case 'sri':
      return `${hash.algo}-${buf.toString('base64')}`;
    case 'base16':
      return (withAlgo ? `${hash.algo}:` : '') + buf.toString('hex');
    case 'nix32':
      return (withAlgo ? `${hash.algo}:` : '') + nix32Encode(hash.bytes);
    case 'base64':
      return (withAlgo ? `${hash.algo}:` : '') + buf.toString('base64');
  }
}

// one-shot hashing: a verifier hashes tens of thousands of small strings (store path
// fingerprints, .drv files), where a Hash object per call costs more than the digest
const latin1 = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? Buffer.from(data, 'latin1') : data);

export function sha256(data: string | Uint8Array): Uint8Array {
  return oneShot('sha256', latin1(data), 'buffer');
}

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot('sha256', latin1(data), 'hex');
}

/** Nix's compressHash: XOR-fold a digest into `size` bytes. */
export function compressHash(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < bytes.length; i++) out[i % size] = (out[i % size] ?? 0) ^ (bytes[i] ?? 0);
  return out;
}
