import { X509Certificate } from 'node:crypto';
import { BuildtraceError } from '../errors.js';
import { certificateExtensions, decodeInteger, readTlv } from './der.js';
import type { TcbParts } from './snp-report.js';

/** AMD VCEK/VLEK certificate extensions (1.3.6.1.4.1.3704.1.*; AMD doc 57230). */
const OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSPL: '1.3.6.1.4.1.3704.1.3.1',
  teeSPL: '1.3.6.1.4.1.3704.1.3.2',
  snpSPL: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSPL: '1.3.6.1.4.1.3704.1.3.8',
  fmcSPL: '1.3.6.1.4.1.3704.1.3.9',
  hwID: '1.3.6.1.4.1.3704.1.4',
  cspID: '1.3.6.1.4.1.3704.1.5',
} as const;

export const AMD_OIDS = OID;

export interface AmdVekCert {
  readonly cert: X509Certificate;
  readonly der: Uint8Array;
  readonly kind: 'VCEK' | 'VLEK';
  readonly productName: string | undefined;
  readonly tcb: TcbParts;
  readonly reservedSplsZero: boolean;
  readonly hwId: Uint8Array | undefined;
  readonly cspId: string | undefined;
}

function fail(msg: string, subject: string): never {
  throw new BuildtraceError('CERT_INVALID', `${subject}: ${msg}`, { subject });
}

function intExt(exts: Map<string, Uint8Array>, oid: string, subject: string, name: string): number | undefined {
  const v = exts.get(oid);
  if (v === undefined) return undefined;
  const t = readTlv(v, 0);
  if (t.tag !== 0x02) fail(`extension ${name} is not an INTEGER`, subject);
  return decodeInteger(t.value);
}

function strExt(exts: Map<string, Uint8Array>, oid: string): string | undefined {
  const v = exts.get(oid);
  if (v === undefined) return undefined;
  try {
    const t = readTlv(v, 0);
    if (t.tag === 0x16 || t.tag === 0x0c || t.tag === 0x13) return Buffer.from(t.value).toString('latin1');
  } catch {
    // fall through: raw string
  }
  return Buffer.from(v).toString('latin1');
}

/** Accepts hwID as raw bytes (older KDS certs) or wrapped in an OCTET STRING (newer). */
function hwIdExt(v: Uint8Array | undefined): Uint8Array | undefined {
  if (v === undefined) return undefined;
  if ((v.length === 66 || v.length === 10) && v[0] === 0x04 && v[1] === v.length - 2) return v.subarray(2);
  return v;
}

export function parseVekCert(der: Uint8Array, subject = 'endorsement certificate'): AmdVekCert {
  let cert: X509Certificate;
  try {
    // OpenSSL ignores bytes after the certificate; we do not accept them.
    if (readTlv(der, 0).end !== der.length) fail(`${der.length - readTlv(der, 0).end} trailing bytes after the certificate`, subject);
    cert = new X509Certificate(der);
  } catch (err) {
    if (err instanceof BuildtraceError) throw err;
    fail(`not an X.509 certificate (${(err as Error).message})`, subject);
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  const kind = cn === 'SEV-VCEK' ? 'VCEK' : cn === 'SEV-VLEK' ? 'VLEK' : fail(`subject CN ${JSON.stringify(cn)} is neither SEV-VCEK nor SEV-VLEK`, subject);
  let curve: string | undefined;
  try {
    // OpenSSL parses the certificate lazily: a damaged key surfaces only here.
    curve = cert.publicKey.asymmetricKeyType === 'ec' ? cert.publicKey.asymmetricKeyDetails?.namedCurve : undefined;
  } catch (err) {
    fail(`public key does not parse (${(err as Error).message})`, subject);
  }
  if (curve !== 'secp384r1') fail('public key is not ECDSA P-384', subject);
  const exts = certificateExtensions(der);
  const need = (oid: string, name: string): number => intExt(exts, oid, subject, name) ?? fail(`missing extension ${name}`, subject);
  const fmc = intExt(exts, OID.fmcSPL, subject, 'fmcSPL');
  const reserved = [OID.spl4, OID.spl5, OID.spl6, OID.spl7].map((o) => intExt(exts, o, subject, 'spl') ?? 0);
  const hwId = hwIdExt(exts.get(OID.hwID));
  const cspId = strExt(exts, OID.cspID);
  if (hwId !== undefined && cspId !== undefined) fail('has both hwID and cspID', subject);
  return {
    cert,
    der,
    kind,
    productName: strExt(exts, OID.productName),
    tcb: {
      bootloader: need(OID.blSPL, 'blSPL'),
      tee: need(OID.teeSPL, 'teeSPL'),
      snp: need(OID.snpSPL, 'snpSPL'),
      microcode: need(OID.ucodeSPL, 'ucodeSPL'),
      ...(fmc !== undefined ? { fmc } : {}),
    },
    reservedSplsZero: reserved.every((r) => r === 0),
    hwId,
    cspId,
  };
}
