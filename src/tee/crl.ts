import { constants, verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { BuildtraceError } from '../errors.js';
import { children, decodeOid, readTlv, type Tlv } from './der.js';

/**
 * An X.509 CRL (RFC 5280 §5), read with our DER walker: Node has no CRL API.
 * Used offline for Intel's PCK and root CRLs and AMD's ARK/ASK CRLs.
 */
export interface Crl {
  /** DER of the issuer Name, compared byte for byte with the issuing certificate's subject. */
  readonly issuer: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** Revoked serial numbers, lowercase hex without leading zeros. */
  readonly revoked: ReadonlySet<string>;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: string;
  readonly signature: Uint8Array;
}

function fail(msg: string): never {
  throw new BuildtraceError('CERT_INVALID', `CRL: ${msg}`);
}

function serialHex(v: Uint8Array | string): string {
  const h = typeof v === 'string' ? v.toLowerCase() : Buffer.from(v).toString('hex');
  return h.replace(/^0+(?=.)/, '');
}

function time(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(t.value).toString('ascii');
  let m: RegExpExecArray | null;
  // biome-ignore lint/suspicious/noAssignInExpressions: match and test in one condition
  if (t.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const y = Number(m[1]);
    return new Date(Date.UTC(y >= 50 ? 1900 + y : 2000 + y, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  // biome-ignore lint/suspicious/noAssignInExpressions: match and test in one condition
  if (t.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  void buf;
  return fail(`unsupported time ${JSON.stringify(s)}`);
}

export function parseCrl(der: Uint8Array): Crl {
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) fail('not a DER SEQUENCE (or trailing bytes)');
  const [tbs, alg, sig] = children(der, top);
  if (!tbs || !alg || !sig || sig.tag !== 0x03) fail('not a CertificateList');
  const f = children(der, tbs);
  let i = 0;
  if (f[i]?.tag === 0x02) i++; // version
  i++; // signature algorithm (inner)
  const issuer = f[i++];
  const thisU = f[i++];
  if (issuer?.tag !== 0x30 || !thisU) fail('missing issuer or thisUpdate');
  let nextUpdate: Date | undefined;
  if (f[i] && (f[i]?.tag === 0x17 || f[i]?.tag === 0x18)) nextUpdate = time(der, f[i++] as Tlv);
  const revoked = new Set<string>();
  if (f[i]?.tag === 0x30) {
    for (const entry of children(der, f[i++] as Tlv)) {
      const serial = children(der, entry)[0];
      if (serial?.tag !== 0x02) fail('revoked entry without a serial number');
      revoked.add(serialHex(serial.value));
    }
  }
  const algOid = children(der, alg)[0];
  if (algOid?.tag !== 0x06) fail('no signature algorithm');
  return {
    issuer: der.subarray(issuer.start, issuer.end),
    thisUpdate: time(der, thisU),
    nextUpdate,
    revoked,
    tbs: der.subarray(tbs.start, tbs.end),
    signatureAlgorithm: decodeOid(algOid.value),
    signature: sig.value.subarray(1),
  };
}

/** DER of a certificate's subject Name (TBSCertificate field 6, after the optional version). */
export function subjectDer(cert: X509Certificate): Uint8Array {
  const raw = cert.raw;
  const tbs = children(raw, readTlv(raw, 0))[0];
  if (!tbs) fail('certificate without TBSCertificate');
  const f = children(raw, tbs);
  const off = f[0]?.tag === 0xa0 ? 1 : 0;
  const s = f[off + 4];
  if (!s) fail('certificate without subject');
  return raw.subarray(s.start, s.end);
}

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const RSA_PSS = '1.2.840.113549.1.1.10';

/** Whether `issuer` signed this CRL (issuer name and signature). AMD CRLs are RSA-PSS/SHA-384, Intel's ECDSA. */
export function crlSignedBy(crl: Crl, issuer: X509Certificate): boolean {
  if (!Buffer.from(crl.issuer).equals(Buffer.from(subjectDer(issuer)))) return false;
  try {
    if (crl.signatureAlgorithm === ECDSA_SHA256) return cryptoVerify('sha256', crl.tbs, issuer.publicKey, crl.signature);
    if (crl.signatureAlgorithm === ECDSA_SHA384) return cryptoVerify('sha384', crl.tbs, issuer.publicKey, crl.signature);
    if (crl.signatureAlgorithm === RSA_PSS) {
      return cryptoVerify('sha384', crl.tbs, { key: issuer.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }, crl.signature);
    }
  } catch {
    return false;
  }
  return false;
}

/** Current at `at`: issued before it and, when it says when the next one comes, not past that. */
export function crlCurrent(crl: Crl, at: Date): boolean {
  return crl.thisUpdate.getTime() <= at.getTime() && (crl.nextUpdate === undefined || at.getTime() <= crl.nextUpdate.getTime());
}

export function isRevoked(crl: Crl, cert: X509Certificate): boolean {
  return crl.revoked.has(serialHex(cert.serialNumber));
}
