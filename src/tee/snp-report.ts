import { BuildtraceError } from '../errors.js';

/** AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP Firmware ABI, doc 56860), 1184 bytes, little-endian. */
export const SNP_REPORT_SIZE = 0x4a0;
export const SNP_SIGNED_LENGTH = 0x2a0;

export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';
type SnpSigningKey = 'VCEK' | 'VLEK' | 'none';

export interface TcbParts {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  /** Turin and later only. */
  readonly fmc?: number;
}

interface SnpPolicy {
  readonly raw: bigint;
  readonly abiMinor: number;
  readonly abiMajor: number;
  readonly smt: boolean;
  readonly migrateMa: boolean;
  readonly debug: boolean;
  readonly singleSocket: boolean;
  readonly cxlAllow: boolean;
  readonly memAes256Xts: boolean;
  readonly raplDis: boolean;
  readonly ciphertextHiding: boolean;
  readonly pageSwapDisable: boolean;
}

export interface SnpReport {
  readonly bytes: Uint8Array;
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: SnpPolicy;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: Uint8Array;
  readonly platformInfo: bigint;
  readonly signerInfo: number;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: SnpSigningKey;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: Uint8Array;
  /** v3+: CPUID family, model, stepping. */
  readonly cpuid: { readonly family: number; readonly model: number; readonly stepping: number } | undefined;
  readonly chipId: Uint8Array;
  readonly committedTcb: Uint8Array;
  readonly currentVersion: string;
  readonly committedVersion: string;
  readonly launchTcb: Uint8Array;
  readonly launchMitVector: bigint;
  readonly currentMitVector: bigint;
  /** Big-endian r and s, 48 bytes each (converted from the 72-byte little-endian fields). */
  readonly signatureR: Uint8Array;
  readonly signatureS: Uint8Array;
}

function fail(msg: string): never {
  throw new BuildtraceError('EVIDENCE_INVALID', `SEV-SNP report: ${msg}`);
}

function allZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

function reverse48(b: Uint8Array): Uint8Array {
  return Uint8Array.from(b.subarray(0, 48)).reverse();
}

function parseSnpPolicy(raw: bigint): SnpPolicy {
  const bit = (n: number): boolean => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    raw,
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxlAllow: bit(21),
    memAes256Xts: bit(22),
    raplDis: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
  };
}

/** Strict parse: exact length, known version and algorithm, reserved fields zero (as go-sev-guest). */
export function parseSnpReport(input: Uint8Array): SnpReport {
  if (input.length !== SNP_REPORT_SIZE) fail(`length ${input.length}, expected ${SNP_REPORT_SIZE}`);
  const b = Uint8Array.from(input);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u64 = (o: number): bigint => dv.getBigUint64(o, true);
  const sl = (o: number, n: number): Uint8Array => b.subarray(o, o + n);
  const version = u32(0x0);
  if (version < 2 || version > 5) fail(`unsupported version ${version}`);
  const signatureAlgo = u32(0x34);
  if (signatureAlgo !== 1) fail(`unknown SIGNATURE_ALGO ${signatureAlgo} (only 1, ECDSA P-384/SHA-384, is defined)`);
  const policyRaw = u64(0x08);
  if (((policyRaw >> 17n) & 1n) !== 1n) fail('POLICY bit 17 (reserved, must be one) is zero');
  if (policyRaw >> 26n !== 0n) fail('POLICY has reserved bits 26-63 set');
  const vmpl = u32(0x30);
  if (vmpl > 3) fail(`VMPL ${vmpl} out of range`);
  const signerInfo = u32(0x48);
  if (signerInfo >>> 5 !== 0) fail('signer info has reserved bits set');
  const sk = (signerInfo >>> 2) & 7;
  const signingKey: SnpSigningKey = sk === 0 ? 'VCEK' : sk === 1 ? 'VLEK' : sk === 7 ? 'none' : fail(`reserved SIGNING_KEY value ${sk}`);
  const mustBeZero: [number, number, string][] = [
    [0x4c, 4, '0x04C'],
    [version >= 3 ? 0x18b : 0x188, version >= 3 ? 21 : 24, 'reserved bytes before CHIP_ID'],
    [0x1eb, 1, '0x1EB'],
    [0x1ef, 1, '0x1EF'],
    [0x208, 0x298 - 0x208 + 8, '0x208..0x29F'],
    [0x330, SNP_REPORT_SIZE - 0x330, 'signature padding 0x330..0x49F'],
  ];
  if (version < 5) mustBeZero.push([0x1f8, 16, 'mitigation vectors (before v5)']);
  for (const [o, n, what] of mustBeZero) if (!allZero(sl(o, n))) fail(`reserved field ${what} is not zero`);
  const rLe = sl(0x2a0, 72);
  const sLe = sl(0x2e8, 72);
  if (!allZero(rLe.subarray(48)) || !allZero(sLe.subarray(48))) fail('signature components wider than 48 bytes');
  const ver = (o: number): string => `${b[o + 2]}.${b[o + 1]}.${b[o]}`;
  return {
    bytes: b,
    version,
    guestSvn: u32(0x04),
    policy: parseSnpPolicy(policyRaw),
    familyId: sl(0x10, 16),
    imageId: sl(0x20, 16),
    vmpl,
    signatureAlgo,
    currentTcb: sl(0x38, 8),
    platformInfo: u64(0x40),
    signerInfo,
    authorKeyEn: (signerInfo & 1) === 1,
    maskChipKey: (signerInfo & 2) === 2,
    signingKey,
    reportData: sl(0x50, 64),
    measurement: sl(0x90, 48),
    hostData: sl(0xc0, 32),
    idKeyDigest: sl(0xe0, 48),
    authorKeyDigest: sl(0x110, 48),
    reportId: sl(0x140, 32),
    reportIdMa: sl(0x160, 32),
    reportedTcb: sl(0x180, 8),
    cpuid: version >= 3 ? { family: b[0x188] as number, model: b[0x189] as number, stepping: b[0x18a] as number } : undefined,
    chipId: sl(0x1a0, 64),
    committedTcb: sl(0x1e0, 8),
    currentVersion: ver(0x1e8),
    committedVersion: ver(0x1ec),
    launchTcb: sl(0x1f0, 8),
    launchMitVector: u64(0x1f8),
    currentMitVector: u64(0x200),
    signatureR: reverse48(rLe),
    signatureS: reverse48(sLe),
  };
}

/** Product line from the CPUID bytes (v3+), per virtee/sev Generation::identify_cpu. */
export function productFromCpuid(r: SnpReport): SnpProduct | undefined {
  if (!r.cpuid) return undefined;
  const { family, model } = r.cpuid;
  if (family === 0x19 && model <= 0x0f) return 'Milan';
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) return 'Genoa';
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/** TCB_VERSION bytes to components; the layout depends on the product line. */
export function decodeTcb(t: Uint8Array, product: SnpProduct | undefined): TcbParts {
  if (product === 'Turin') {
    return { fmc: t[0] as number, bootloader: t[1] as number, tee: t[2] as number, snp: t[3] as number, microcode: t[7] as number };
  }
  return { bootloader: t[0] as number, tee: t[1] as number, snp: t[6] as number, microcode: t[7] as number };
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
