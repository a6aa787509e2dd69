import { BuildtraceError } from '../errors.js';
import { certificateExtensions, children, decodeInteger, decodeOid, readTlv } from './der.js';

/** Intel SGX PCK certificate extension (OID 1.2.840.113741.1.13.1; Intel "SGX PCK Certificate and CRL Profile"). */
const SGX_EXT = '1.2.840.113741.1.13.1';

export interface PckExtensions {
  readonly fmspc: string;
  readonly pceId: string;
  /** SGX TCB component SVNs 1..16. */
  readonly sgxTcbComponents: readonly number[];
  readonly pceSvn: number;
}

function fail(msg: string): never {
  throw new BuildtraceError('CERT_INVALID', `PCK certificate: ${msg}`);
}

export function parsePckExtensions(der: Uint8Array): PckExtensions {
  const ext = certificateExtensions(der).get(SGX_EXT);
  if (!ext) fail('no SGX extension (1.2.840.113741.1.13.1)');
  const top = readTlv(ext, 0);
  const byOid = new Map<string, { tag: number; value: Uint8Array; children: () => ReturnType<typeof children> }>();
  for (const e of children(ext, top)) {
    const [o, v] = children(ext, e);
    if (!o || !v || o.tag !== 0x06) fail('malformed SGX extension entry');
    byOid.set(decodeOid(o.value), { tag: v.tag, value: v.value, children: () => children(ext, v) });
  }
  const octets = (oid: string, name: string, len: number): string => {
    const v = byOid.get(oid);
    if (v?.tag !== 0x04 || v.value.length !== len) fail(`missing or malformed ${name}`);
    return Buffer.from(v.value).toString('hex');
  };
  const tcb = byOid.get(`${SGX_EXT}.2`);
  if (tcb?.tag !== 0x30) fail('missing TCB');
  const comps = new Map<string, number>();
  for (const c of tcb.children()) {
    const [o, v] = children(ext, c);
    if (!o || !v || o.tag !== 0x06) fail('malformed TCB entry');
    if (v.tag === 0x02) comps.set(decodeOid(o.value), decodeInteger(v.value));
  }
  const sgx: number[] = [];
  for (let i = 1; i <= 16; i++) {
    const n = comps.get(`${SGX_EXT}.2.${i}`);
    if (n === undefined) fail(`missing SGX TCB component ${i}`);
    sgx.push(n);
  }
  const pceSvn = comps.get(`${SGX_EXT}.2.17`);
  if (pceSvn === undefined) fail('missing PCESVN');
  return { fmspc: octets(`${SGX_EXT}.4`, 'FMSPC', 6), pceId: octets(`${SGX_EXT}.3`, 'PCE-ID', 2), sgxTcbComponents: sgx, pceSvn };
}
