import { createHash } from 'node:crypto';
import { BuildtraceError } from '../errors.js';

/**
 * What REPORT_DATA binds. Both are SHA-512 over a domain-separated preimage; the
 * preimage is stored next to the report so a verifier recomputes all 64 bytes.
 */
const KEY_ATTESTATION_DOMAIN = 'buildtrace/key-attestation/v1\0';
export const TRACE_ATTESTATION_DOMAIN = 'buildtrace/trace-attestation/v1\0';

export type Binding =
  | { readonly kind: 'key'; readonly publicKey: Uint8Array; readonly nonce: Uint8Array }
  | { readonly kind: 'trace'; readonly statementSha256: Uint8Array };

/** Key attestation: the builder's Ed25519 public key (32 bytes) and a 32-byte boot nonce. */
export function keyAttestationPreimage(publicKey: Uint8Array, nonce: Uint8Array): Buffer {
  if (publicKey.length !== 32 || nonce.length !== 32) throw new BuildtraceError('USAGE', 'key attestation needs a 32-byte key and a 32-byte nonce');
  return Buffer.concat([Buffer.from(KEY_ATTESTATION_DOMAIN, 'ascii'), publicKey, nonce]);
}

/** Per-trace attestation: SHA-256 of the exact signed statement bytes. */
export function traceAttestationPreimage(statement: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(TRACE_ATTESTATION_DOMAIN, 'ascii'), createHash('sha256').update(statement).digest()]);
}

export function reportDataFor(preimage: Uint8Array): Buffer {
  return createHash('sha512').update(preimage).digest();
}

export function parsePreimage(p: Uint8Array): Binding {
  const b = Buffer.from(p);
  const k = Buffer.from(KEY_ATTESTATION_DOMAIN, 'ascii');
  const t = Buffer.from(TRACE_ATTESTATION_DOMAIN, 'ascii');
  if (b.length === k.length + 64 && b.subarray(0, k.length).equals(k)) {
    return { kind: 'key', publicKey: b.subarray(k.length, k.length + 32), nonce: b.subarray(k.length + 32) };
  }
  if (b.length === t.length + 32 && b.subarray(0, t.length).equals(t)) return { kind: 'trace', statementSha256: b.subarray(t.length) };
  throw new BuildtraceError('EVIDENCE_INVALID', 'preimage is neither a buildtrace key attestation nor a trace attestation');
}
