import { BuildtraceError } from '../errors.js';

/** Intel TDX quote v4/v5 (sgx_quote_4.h, sgx_quote_5.h); integers little-endian, signatures big-endian. */
interface TdxBody {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly reportData: Uint8Array;
  readonly teeTcbSvn2?: Uint8Array;
  readonly mrServiceTd?: Uint8Array;
}

export interface TdxQuote {
  readonly bytes: Uint8Array;
  readonly version: 4 | 5;
  readonly attestationKeyType: number;
  readonly teeType: number;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
  /** v5 body type: 2 = TDX 1.0, 3 = TDX 1.5; 2 for v4. */
  readonly bodyType: number;
  readonly body: TdxBody;
  /** header + (v5 descriptor +) body: the bytes the attestation key signs. */
  readonly signedBytes: Uint8Array;
  readonly reportDataOffset: number;
  readonly signature: Uint8Array;
  readonly attestationKey: Uint8Array;
  readonly qeReport: Uint8Array;
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  /** PEM text of the PCK chain (leaf, intermediate, root) as it came with the quote. */
  readonly pckChainPem: string;
  readonly trailingBytes: number;
  readonly tdDebug: boolean;
}

function fail(msg: string): never {
  throw new BuildtraceError('EVIDENCE_INVALID', `TDX quote: ${msg}`);
}

const BODY_V4 = 584;
const BODY_V15 = 648;

export function parseTdxQuote(input: Uint8Array): TdxQuote {
  const b = Uint8Array.from(input);
  if (b.length < 48) fail(`only ${b.length} bytes`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (end: number, what: string): void => {
    if (end > b.length) fail(`truncated in ${what} (needs ${end} bytes, has ${b.length})`);
  };
  const version = dv.getUint16(0, true);
  if (version !== 4 && version !== 5) fail(`unsupported version ${version}`);
  const attestationKeyType = dv.getUint16(2, true);
  if (attestationKeyType !== 2) fail(`attestation key type ${attestationKeyType} is not ECDSA-256 (2)`);
  const teeType = dv.getUint32(4, true);
  if (teeType !== 0x81) fail(`TEE type 0x${teeType.toString(16)} is not TDX (0x81)`);
  let bodyOff = 48;
  let bodyType = 2;
  let bodySize = BODY_V4;
  if (version === 5) {
    need(54, 'body descriptor');
    bodyType = dv.getUint16(48, true);
    bodySize = dv.getUint32(50, true);
    if (!((bodyType === 2 && bodySize === BODY_V4) || (bodyType === 3 && bodySize === BODY_V15)))
      fail(`unsupported body type ${bodyType} of ${bodySize} bytes`);
    bodyOff = 54;
  }
  const sigLenOff = bodyOff + bodySize;
  need(sigLenOff + 4, 'body');
  const sl = (o: number, n: number): Uint8Array => b.subarray(o, o + n);
  const o = bodyOff;
  const body: TdxBody = {
    teeTcbSvn: sl(o, 16),
    mrSeam: sl(o + 16, 48),
    mrSignerSeam: sl(o + 64, 48),
    seamAttributes: sl(o + 112, 8),
    tdAttributes: sl(o + 120, 8),
    xfam: sl(o + 128, 8),
    mrTd: sl(o + 136, 48),
    mrConfigId: sl(o + 184, 48),
    mrOwner: sl(o + 232, 48),
    mrOwnerConfig: sl(o + 280, 48),
    rtmrs: [sl(o + 328, 48), sl(o + 376, 48), sl(o + 424, 48), sl(o + 472, 48)],
    reportData: sl(o + 520, 64),
    ...(bodyType === 3 ? { teeTcbSvn2: sl(o + 584, 16), mrServiceTd: sl(o + 600, 48) } : {}),
  };
  const sigLen = dv.getUint32(sigLenOff, true);
  const s = sigLenOff + 4;
  const sigEnd = s + sigLen;
  need(sigEnd, 'signature data');
  if (sigLen < 134) fail(`signature data of ${sigLen} bytes is too short`);
  const certType = dv.getUint16(s + 128, true);
  if (certType !== 6) fail(`certification data type ${certType} is not QE report certification data (6)`);
  const certSize = dv.getUint32(s + 130, true);
  const c = s + 134;
  if (c + certSize > sigEnd) fail('QE report certification data runs past the signature data');
  if (certSize < 384 + 64 + 2) fail('QE report certification data too short');
  const authLen = dv.getUint16(c + 448, true);
  const authStart = c + 450;
  const inner = authStart + authLen;
  if (inner + 6 > c + certSize) fail('QE auth data runs past the certification data');
  const innerType = dv.getUint16(inner, true);
  if (innerType !== 5) fail(`inner certification data type ${innerType} is not a PCK certificate chain (5)`);
  const innerSize = dv.getUint32(inner + 2, true);
  if (inner + 6 + innerSize > c + certSize) fail('PCK certificate chain runs past the certification data');
  const pem = Buffer.from(b.subarray(inner + 6, inner + 6 + innerSize))
    .toString('latin1')
    .replace(/\0+$/, '');
  return {
    bytes: b,
    version,
    attestationKeyType,
    teeType,
    qeVendorId: sl(12, 16),
    userData: sl(28, 20),
    bodyType,
    body,
    signedBytes: b.subarray(0, sigLenOff),
    reportDataOffset: o + 520,
    signature: sl(s, 64),
    attestationKey: sl(s + 64, 64),
    qeReport: sl(c, 384),
    qeReportSignature: sl(c + 384, 64),
    qeAuthData: sl(authStart, authLen),
    pckChainPem: pem,
    trailingBytes: b.length - sigEnd,
    tdDebug: ((body.tdAttributes[0] as number) & 1) === 1,
  };
}

/** SNP report or TDX quote, from the bytes alone. */
export function detectEvidence(b: Uint8Array): 'sev-snp' | 'tdx' | undefined {
  if (b.length >= 8) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const v16 = dv.getUint16(0, true);
    if ((v16 === 4 || v16 === 5) && dv.getUint16(2, true) === 2 && dv.getUint32(4, true) === 0x81) return 'tdx';
  }
  if (b.length === 0x4a0) return 'sev-snp';
  return undefined;
}
