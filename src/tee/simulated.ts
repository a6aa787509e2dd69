import { createHash, generateKeyPairSync, randomBytes, sign, constants, type KeyObject } from 'node:crypto';
import { AMD_OIDS } from './amd-cert.js';
import { bitString, ctx, ia5, int, nullDer, octets, oid, seq, set, tlv, utf8 } from './der.js';
import { SNP_REPORT_SIZE, SNP_SIGNED_LENGTH, type TcbParts } from './snp-report.js';

/**
 * A simulated SEV-SNP platform for tests and demos: reports in the real
 * ATTESTATION_REPORT byte layout, signed by a VCEK (P-384, with AMD's TCB and
 * hwID extensions) under an ASK and ARK (RSA-PSS/SHA-384) generated here. The
 * same verifier checks them; only a policy that pins these roots accepts them.
 * It is marked in the report (FAMILY_ID "BUILDTRACE-SIM") and in every
 * certificate (O=buildtrace SIMULATED TEE, NOT AMD).
 */
export const SIMULATED_FAMILY_ID = Buffer.from('BUILDTRACE-SIM\0\0', 'ascii');
const SIM_ORG = 'buildtrace SIMULATED TEE, NOT AMD';

/** AlgorithmIdentifier RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48: how AMD signs its certificates and CRLs. */
export const RSA_PSS_SHA384 = seq(
  oid('1.2.840.113549.1.1.10'),
  seq(
    ctx(0, seq(oid('2.16.840.1.101.3.4.2.2'), nullDer())),
    ctx(1, seq(oid('1.2.840.113549.1.1.8'), seq(oid('2.16.840.1.101.3.4.2.2'), nullDer()))),
    ctx(2, int(48)),
  ),
);

function name(cn: string): Buffer {
  const rdn = (o: string, v: Buffer): Buffer => set(seq(oid(o), v));
  return seq(
    rdn('2.5.4.11', utf8('Engineering')),
    rdn('2.5.4.6', tlv(0x13, Buffer.from('US'))),
    rdn('2.5.4.7', utf8('Santa Clara')),
    rdn('2.5.4.8', utf8('CA')),
    rdn('2.5.4.10', utf8(SIM_ORG)),
    rdn('2.5.4.3', utf8(cn)),
  );
}

function utcTime(d: Date): Buffer {
  const s = d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z')
    .slice(2);
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

function ext(o: string, value: Buffer, critical = false): Buffer {
  return seq(oid(o), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), octets(value));
}

function certificate(opts: {
  serial: number;
  issuer: string;
  subject: string;
  publicKey: KeyObject;
  signer: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}): Buffer {
  const tbs = seq(
    ctx(0, int(2)),
    int(opts.serial),
    RSA_PSS_SHA384,
    name(opts.issuer),
    seq(utcTime(opts.notBefore), utcTime(opts.notAfter)),
    name(opts.subject),
    opts.publicKey.export({ format: 'der', type: 'spki' }),
    ctx(3, seq(...opts.extensions)),
  );
  return seq(tbs, RSA_PSS_SHA384, bitString(signRsaPssSha384(tbs, opts.signer)));
}

/** A signature under RSA_PSS_SHA384. */
export function signRsaPssSha384(tbs: Uint8Array, key: KeyObject): Buffer {
  return sign('sha384', tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
}

export interface SimulatedPlatform {
  readonly ark: Buffer;
  readonly ask: Buffer;
  readonly vcek: Buffer;
  readonly chipId: Buffer;
  readonly tcb: TcbParts;
  readonly measurement: Buffer;
  /** The simulated ARK's private key (tests sign CRLs with it). */
  readonly arkKey: KeyObject;
  /** The simulated ASK's private key (tests show a CRL from it is refused). */
  readonly askKey: KeyObject;
  /** Signs a report for `reportData`. */
  report(reportData: Uint8Array, opts?: { debug?: boolean; vmpl?: number }): Buffer;
}

export function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

export function createSimulatedPlatform(
  opts: {
    rsaBits?: number;
    now?: Date;
    tcb?: TcbParts;
    measurement?: Buffer;
    /** Tests only: an ASK whose keyUsage lacks keyCertSign (digitalSignature only), to show the chain is refused. */
    askWithoutKeyCertSign?: boolean;
  } = {},
): SimulatedPlatform {
  const now = opts.now ?? new Date();
  const rsaBits = opts.rsaBits ?? 2048;
  const ark = generateKeyPairSync('rsa', { modulusLength: rsaBits });
  const ask = generateKeyPairSync('rsa', { modulusLength: rsaBits });
  const vcek = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const tcb = opts.tcb ?? { bootloader: 4, tee: 0, snp: 22, microcode: 213 };
  const chipId = randomBytes(64);
  const measurement = opts.measurement ?? createHash('sha384').update('buildtrace simulated launch measurement').digest();
  const from = new Date(now.getTime() - 86_400_000);
  const caTo = new Date(now.getTime() + 20 * 365 * 86_400_000);
  // As AMD's real certificates: the ARK a CA that signs certificates and CRLs, the ASK a CA
  // (pathLen 0) that signs certificates only.
  const arkExt = [ext('2.5.29.19', seq(tlv(0x01, Buffer.from([0xff]))), true), ext('2.5.29.15', tlv(0x03, Buffer.from([0x01, 0x06])), true)];
  const askExt = opts.askWithoutKeyCertSign
    ? [ext('2.5.29.19', seq(tlv(0x01, Buffer.from([0xff])), int(0)), true), ext('2.5.29.15', tlv(0x03, Buffer.from([0x07, 0x80])), true)]
    : [ext('2.5.29.19', seq(tlv(0x01, Buffer.from([0xff])), int(0)), true), ext('2.5.29.15', tlv(0x03, Buffer.from([0x02, 0x04])), true)];
  const arkDer = certificate({
    serial: 1,
    issuer: 'ARK-Milan',
    subject: 'ARK-Milan',
    publicKey: ark.publicKey,
    signer: ark.privateKey,
    notBefore: from,
    notAfter: caTo,
    extensions: arkExt,
  });
  const askDer = certificate({
    serial: 2,
    issuer: 'ARK-Milan',
    subject: 'SEV-Milan',
    publicKey: ask.publicKey,
    signer: ark.privateKey,
    notBefore: from,
    notAfter: caTo,
    extensions: askExt,
  });
  const vcekDer = certificate({
    serial: 0,
    issuer: 'SEV-Milan',
    subject: 'SEV-VCEK',
    publicKey: vcek.publicKey,
    signer: ask.privateKey,
    notBefore: from,
    notAfter: new Date(now.getTime() + 7 * 365 * 86_400_000),
    extensions: [
      ext(AMD_OIDS.structVersion, int(0)),
      ext(AMD_OIDS.productName, ia5('Milan-B0')),
      ext(AMD_OIDS.blSPL, int(tcb.bootloader)),
      ext(AMD_OIDS.teeSPL, int(tcb.tee)),
      ext(AMD_OIDS.snpSPL, int(tcb.snp)),
      ext(AMD_OIDS.spl4, int(0)),
      ext(AMD_OIDS.spl5, int(0)),
      ext(AMD_OIDS.spl6, int(0)),
      ext(AMD_OIDS.spl7, int(0)),
      ext(AMD_OIDS.ucodeSPL, int(tcb.microcode)),
      ext(AMD_OIDS.hwID, octets(chipId)),
    ],
  });
  const tcbBytes = Buffer.from([tcb.bootloader, tcb.tee, 0, 0, 0, 0, tcb.snp, tcb.microcode]);
  return {
    ark: arkDer,
    ask: askDer,
    vcek: vcekDer,
    chipId,
    tcb,
    measurement,
    arkKey: ark.privateKey,
    askKey: ask.privateKey,
    report(reportData, ro = {}) {
      if (reportData.length !== 64) throw new Error('REPORT_DATA must be 64 bytes');
      const r = Buffer.alloc(SNP_REPORT_SIZE);
      r.writeUInt32LE(3, 0x00); // version 3: carries CPUID bytes
      r.writeBigUInt64LE(0x30000n | (ro.debug ? 1n << 19n : 0n), 0x08);
      SIMULATED_FAMILY_ID.copy(r, 0x10);
      r.writeUInt32LE(ro.vmpl ?? 0, 0x30);
      r.writeUInt32LE(1, 0x34);
      tcbBytes.copy(r, 0x38);
      r.writeBigUInt64LE(1n, 0x40);
      Buffer.from(reportData).copy(r, 0x50);
      measurement.copy(r, 0x90);
      randomBytes(32).copy(r, 0x140);
      r.fill(0xff, 0x160, 0x180);
      tcbBytes.copy(r, 0x180);
      r[0x188] = 0x19; // family: Milan
      r[0x189] = 0x01;
      r[0x18a] = 0x01;
      chipId.copy(r, 0x1a0);
      tcbBytes.copy(r, 0x1e0);
      r[0x1e8] = 3;
      r[0x1e9] = 55;
      r[0x1ea] = 1;
      r[0x1ec] = 3;
      r[0x1ed] = 55;
      r[0x1ee] = 1;
      tcbBytes.copy(r, 0x1f0);
      const sig = sign('sha384', r.subarray(0, SNP_SIGNED_LENGTH), { key: vcek.privateKey, dsaEncoding: 'ieee-p1363' });
      Buffer.from(sig.subarray(0, 48)).reverse().copy(r, 0x2a0);
      Buffer.from(sig.subarray(48, 96)).reverse().copy(r, 0x2e8);
      return r;
    },
  };
}
