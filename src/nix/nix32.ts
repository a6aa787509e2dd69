import { BuildtraceError } from '../errors.js';

/** Nix's base-32 alphabet: no e, o, u, t. */
const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DECODE[NIX32_ALPHABET.charCodeAt(i)] = i;

export function nix32EncodedLength(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

/**
 * Nix32 is not RFC 4648: bits are taken little-endian and the characters are
 * emitted from the last 5-bit group to the first (src/libutil/base-nix-32.cc).
 */
export function nix32Encode(bytes: Uint8Array): string {
  const len = nix32EncodedLength(bytes.length);
  let out = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >>> 3;
    const j = b & 7;
    const lo = bytes[i] ?? 0;
    const hi = bytes[i + 1] ?? 0;
    const c = ((lo >> j) | (hi << (8 - j))) & 0x1f;
    out += NIX32_ALPHABET[c];
  }
  return out;
}

/** Decodes Nix32 into exactly `byteLength` bytes (derived from the text length if omitted). */
export function nix32Decode(text: string, byteLength?: number): Uint8Array {
  const size = byteLength ?? Math.floor((text.length * 5) / 8);
  if (nix32EncodedLength(size) !== text.length) {
    throw new BuildtraceError('NIX32_INVALID', `Nix32 string of length ${text.length} cannot encode ${size} bytes`);
  }
  const out = new Uint8Array(size);
  for (let n = 0; n < text.length; n++) {
    const code = text.charCodeAt(text.length - 1 - n);
    const digit = code < 128 ? (DECODE[code] ?? -1) : -1;
    if (digit < 0) {
      throw new BuildtraceError('NIX32_INVALID', `invalid Nix32 character ${JSON.stringify(text[text.length - 1 - n])}`);
    }
    const b = n * 5;
    const i = b >>> 3;
    const j = b & 7;
    out[i] = (out[i] ?? 0) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < size) {
      out[i + 1] = (out[i + 1] ?? 0) | carry;
    } else if (carry !== 0) {
      throw new BuildtraceError('NIX32_INVALID', 'Nix32 string has non-zero padding bits');
    }
  }
  return out;
}

export function isNix32(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || (DECODE[c] ?? -1) < 0) return false;
  }
  return true;
}
