import { BuildtraceError } from '../errors.js';

/** A minimal DER reader (and writer) for the parts of X.509 that Node does not expose. */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the contents. */
  readonly valueStart: number;
  readonly end: number;
  readonly value: Uint8Array;
}

function fail(msg: string): never {
  throw new BuildtraceError('CERT_INVALID', `DER: ${msg}`);
}

export function readTlv(buf: Uint8Array, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) fail('truncated element');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) fail('high tag numbers are not supported');
  let len = buf[pos + 1] as number;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) fail('unsupported length encoding');
    if (p + n > limit) fail('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    p += n;
  }
  if (p + len > limit) fail('element runs past its container');
  return { tag, start: pos, valueStart: p, end: p + len, value: buf.subarray(p, p + len) };
}

export function children(buf: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = t.valueStart;
  while (p < t.end) {
    const c = readTlv(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function decodeOid(v: Uint8Array): string {
  if (v.length === 0) fail('empty OID');
  const first = v[0] as number;
  const parts = [Math.min(2, Math.floor(first / 40)), first - 40 * Math.min(2, Math.floor(first / 40))];
  let acc = 0;
  for (let i = 1; i < v.length; i++) {
    const b = v[i] as number;
    acc = acc * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(acc);
      acc = 0;
    }
  }
  return parts.join('.');
}

export function decodeInteger(v: Uint8Array): number {
  if (v.length === 0 || v.length > 6) fail('integer out of range');
  let n = 0;
  for (const b of v) n = n * 256 + b;
  if ((v[0] as number) & 0x80) fail('negative integer');
  return n;
}

interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** extnValue contents (the DER inside the OCTET STRING). */
  readonly value: Uint8Array;
}

/**
 * Extensions of an X.509 certificate, in order. A repeated extension is refused (RFC 5280
 * §4.2: "A certificate MUST NOT include more than one instance of a particular extension"):
 * two basicConstraints could be read one way here and another way by OpenSSL.
 */
export function certificateExtensionList(der: Uint8Array): Extension[] {
  const cert = readTlv(der, 0);
  const [tbs] = children(der, cert);
  if (!tbs) fail('certificate has no TBSCertificate');
  const out: Extension[] = [];
  const seen = new Set<string>();
  for (const f of children(der, tbs)) {
    if (f.tag !== 0xa3) continue;
    const [seq] = children(der, f);
    if (!seq) continue;
    for (const ext of children(der, seq)) {
      const parts = children(der, ext);
      const oid = parts[0];
      const val = parts[parts.length - 1];
      if (!oid || !val || oid.tag !== 0x06 || val.tag !== 0x04 || parts.length > 3) fail('malformed extension');
      const crit = parts.length === 3 ? parts[1] : undefined;
      if (crit && (crit.tag !== 0x01 || crit.value.length !== 1)) fail('malformed extension criticality');
      const o = decodeOid(oid.value);
      if (seen.has(o)) fail(`extension ${o} appears twice`);
      seen.add(o);
      out.push({ oid: o, critical: crit !== undefined && crit.value[0] !== 0, value: val.value });
    }
  }
  return out;
}

/** Extensions of an X.509 certificate: OID -> extnValue contents. */
export function certificateExtensions(der: Uint8Array): Map<string, Uint8Array> {
  return new Map(certificateExtensionList(der).map((e) => [e.oid, e.value]));
}

// ---- writer (used to build the simulated TEE's certificates) ----

function encLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encLength(body.length), body]);
}

export const seq = (...c: Uint8Array[]): Buffer => tlv(0x30, ...c);
export const set = (...c: Uint8Array[]): Buffer => tlv(0x31, ...c);
export const octets = (b: Uint8Array): Buffer => tlv(0x04, b);
export const ia5 = (s: string): Buffer => tlv(0x16, Buffer.from(s, 'ascii'));
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const nullDer = (): Buffer => Buffer.from([0x05, 0x00]);
export const ctx = (n: number, ...c: Uint8Array[]): Buffer => tlv(0xa0 + n, ...c);

export function int(n: number | Uint8Array): Buffer {
  let bytes: number[];
  if (typeof n === 'number') {
    bytes = [];
    do {
      bytes.unshift(n & 0xff);
      n = Math.floor(n / 256);
    } while (n > 0);
  } else bytes = [...n];
  while (bytes.length > 1 && bytes[0] === 0 && !((bytes[1] as number) & 0x80)) bytes.shift();
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function oid(s: string): Buffer {
  const p = s.split('.').map(Number);
  const out: number[] = [40 * (p[0] as number) + (p[1] as number)];
  for (const v of p.slice(2)) {
    const chunk: number[] = [v & 0x7f];
    let x = Math.floor(v / 128);
    while (x > 0) {
      chunk.unshift((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

export function generalizedTime(d: Date): Buffer {
  const s = d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return tlv(0x18, Buffer.from(s, 'ascii'));
}

export function bitString(b: Uint8Array): Buffer {
  return tlv(0x03, Buffer.from([0]), b);
}
