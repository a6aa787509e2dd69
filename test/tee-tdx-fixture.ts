import { generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bitString, certificateExtensions, ctx, generalizedTime, int, octets, oid, seq, set, tlv, utf8 } from '../src/tee/der.js';
import { pem, RSA_PSS_SHA384, signRsaPssSha384 } from '../src/tee/simulated.js';
import { parseTdxQuote } from '../src/tee/tdx-quote.js';

/**
 * A test-only "other Intel": a P-256 CA hierarchy generated here, used to re-sign real
 * collateral (changed one field at a time) and to re-certify a real quote's QE report under
 * a PCK certificate we control, so that revocation can be exercised. Real quote bytes and
 * real SGX extension values are kept; only the keys that sign them are ours.
 */
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const SGX_EXT = '1.2.840.113741.1.13.1';

function name(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), utf8(cn))), set(seq(oid('2.5.4.10'), utf8('buildtrace TEST, NOT Intel'))));
}

export interface TestCa {
  readonly cert: Buffer;
  readonly key: KeyObject;
  readonly name: Buffer;
}

let serial = 0x1000;

/** KeyUsage bits as Intel sets them: CAs keyCertSign + cRLSign, end entities digitalSignature + nonRepudiation. */
export const KU_CA = 0x06;
export const KU_EE = 0xc0;

export function makeCert(
  subject: string,
  issuer: TestCa | undefined,
  opts: { ca: boolean; extensions?: Buffer[]; notAfter?: Date; keyUsage?: number | null; pathLen?: number; basicConstraints?: boolean } = { ca: true },
): TestCa {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const subj = name(subject);
  const signer = issuer?.key ?? kp.privateKey;
  const ku = opts.keyUsage === undefined ? (opts.ca ? KU_CA : KU_EE) : opts.keyUsage;
  const bc = [...(opts.ca ? [tlv(0x01, Buffer.from([0xff]))] : []), ...(opts.pathLen !== undefined ? [int(opts.pathLen)] : [])];
  const exts = [
    ...(opts.basicConstraints === false ? [] : [seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), octets(seq(...bc)))]),
    // unused-bits count 1 keeps the DER of the two KU values used here minimal enough for OpenSSL
    ...(ku === null ? [] : [seq(oid('2.5.29.15'), tlv(0x01, Buffer.from([0xff])), octets(tlv(0x03, Buffer.from([1, ku]))))]),
    ...(opts.extensions ?? []),
  ];
  const tbs = seq(
    ctx(0, int(2)),
    int(serial++),
    ECDSA_SHA256,
    issuer?.name ?? subj,
    seq(generalizedTime(new Date('2018-01-01T00:00:00Z')), generalizedTime(opts.notAfter ?? new Date('2049-01-01T00:00:00Z'))),
    subj,
    kp.publicKey.export({ format: 'der', type: 'spki' }),
    ctx(3, seq(...exts)),
  );
  return { cert: seq(tbs, ECDSA_SHA256, bitString(sign('sha256', tbs, signer))), key: kp.privateKey, name: subj };
}

export function makeCrl(issuer: TestCa, revokedSerialsHex: readonly string[], thisUpdate: Date, nextUpdate: Date): Buffer {
  const revoked = revokedSerialsHex.map((h) => seq(int(Buffer.from(h.length % 2 ? `0${h}` : h, 'hex')), generalizedTime(thisUpdate)));
  const tbs = seq(int(1), ECDSA_SHA256, issuer.name, generalizedTime(thisUpdate), generalizedTime(nextUpdate), ...(revoked.length ? [seq(...revoked)] : []));
  return seq(tbs, ECDSA_SHA256, bitString(sign('sha256', tbs, issuer.key)));
}

/** An AMD-style CRL (RSA-PSS/SHA-384, as KDS serves), issued under `issuerName` (DER) with `key`. */
export function makeAmdCrl(issuerName: Uint8Array, key: KeyObject, revokedSerialsHex: readonly string[], thisUpdate: Date, nextUpdate: Date): Buffer {
  const revoked = revokedSerialsHex.map((h) => seq(int(Buffer.from(h.length % 2 ? `0${h}` : h, 'hex')), generalizedTime(thisUpdate)));
  const tbs = seq(
    int(1),
    RSA_PSS_SHA384,
    Buffer.from(issuerName),
    generalizedTime(thisUpdate),
    generalizedTime(nextUpdate),
    ...(revoked.length ? [seq(...revoked)] : []),
  );
  return seq(tbs, RSA_PSS_SHA384, bitString(signRsaPssSha384(tbs, key)));
}

/** Re-signs a PCS document ({"<member>": {...}, "signature": hex}) after `edit`, with `signer`. */
export function resignDoc(text: string, member: string, signer: TestCa, edit: (body: Record<string, unknown>) => void): string {
  const body = (JSON.parse(text) as Record<string, Record<string, unknown>>)[member] as Record<string, unknown>;
  edit(body);
  const raw = JSON.stringify(body);
  const sig = sign('sha256', Buffer.from(raw), { key: signer.key, dsaEncoding: 'ieee-p1363' }).toString('hex');
  return `{"${member}":${raw},"signature":"${sig}"}`;
}

/** The same quote, its QE report now certified by `pck` (chain pck ← platformCa ← root). */
export function recertifyQuote(quote: Buffer, pck: TestCa, chain: readonly Buffer[]): Buffer {
  const q = parseTdxQuote(quote);
  const s = q.signedBytes.length + 4;
  const pemChain = Buffer.from(chain.map((c) => pem(c)).join(''), 'latin1');
  const inner = Buffer.concat([u16(5), u32(pemChain.length), pemChain]);
  const qeSig = sign('sha256', q.qeReport, { key: pck.key, dsaEncoding: 'ieee-p1363' });
  const cert = Buffer.concat([q.qeReport, qeSig, u16(q.qeAuthData.length), q.qeAuthData, inner]);
  const sigData = Buffer.concat([q.signature, q.attestationKey, u16(6), u32(cert.length), cert]);
  return Buffer.concat([quote.subarray(0, s - 4), u32(sigData.length), sigData]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** The SGX extension of the quote's real PCK certificate, to copy into a test PCK certificate. */
export function sgxExtensionOf(quote: Buffer): Buffer {
  const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(parseTdxQuote(quote).pckChainPem)?.[0] ?? '';
  const value = certificateExtensions(new X509Certificate(leafPem).raw).get(SGX_EXT);
  if (!value) throw new Error('no SGX extension');
  return seq(oid(SGX_EXT), octets(value));
}

/** Writes a collateral directory: real files from `from`, with replacements. */
export function collateralDir(
  dir: string,
  from: string,
  replace: Partial<Record<'tcb-info.json' | 'qe-identity.json' | 'tcb-signing-chain.pem' | 'pck-crl.der' | 'root-crl.der', Buffer | string>>,
): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['tcb-info.json', 'qe-identity.json', 'tcb-signing-chain.pem', 'pck-crl.der', 'root-crl.der'] as const) {
    const r = replace[f];
    if (r === undefined) copyFileSync(join(from, f), join(dir, f));
    else writeFileSync(join(dir, f), r);
  }
  return dir;
}
