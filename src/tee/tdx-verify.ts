import { createHash, createPublicKey, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { JsonValue } from '../util/strict-json.js';
import { cn, certSha256, validAt, type PinnedCert } from './roots.js';
import { hex } from './snp-report.js';
import { parseTdxQuote, type TdxQuote } from './tdx-quote.js';
import { verdictOk, type EvidenceVerdict, type Step, type TeePolicy } from './tee-policy.js';

/** Certificates from the evidence are hostile input: any OpenSSL error is a failed check. */
function signedBy(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.issuer === issuer.subject && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function p256Key(xy: Uint8Array): ReturnType<typeof createPublicKey> {
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: Buffer.from(xy.subarray(0, 32)).toString('base64url'), y: Buffer.from(xy.subarray(32, 64)).toString('base64url') },
    format: 'jwk',
  });
}

export function tdxFields(q: TdxQuote): Record<string, JsonValue> {
  return {
    version: q.version,
    attestation_key_type: q.attestationKeyType,
    tee_type: '0x' + q.teeType.toString(16),
    qe_vendor_id: hex(q.qeVendorId),
    body_type: q.bodyType,
    tee_tcb_svn: hex(q.body.teeTcbSvn),
    mr_seam: hex(q.body.mrSeam),
    td_attributes: hex(q.body.tdAttributes),
    td_debug: q.tdDebug,
    xfam: hex(q.body.xfam),
    mr_td: hex(q.body.mrTd),
    mr_config_id: hex(q.body.mrConfigId),
    mr_owner: hex(q.body.mrOwner),
    mr_owner_config: hex(q.body.mrOwnerConfig),
    rtmr0: hex(q.body.rtmrs[0]),
    rtmr1: hex(q.body.rtmrs[1]),
    rtmr2: hex(q.body.rtmrs[2]),
    rtmr3: hex(q.body.rtmrs[3]),
    report_data: hex(q.body.reportData),
    report_data_offset: '0x' + q.reportDataOffset.toString(16),
    trailing_bytes: q.trailingBytes,
  };
}

export function verifyTdx(bytes: Uint8Array, roots: readonly PinnedCert[], at: Date, policy: TeePolicy, expectedReportData?: Uint8Array): EvidenceVerdict {
  const steps: Step[] = [];
  let q: TdxQuote;
  try {
    q = parseTdxQuote(bytes);
    steps.push({ step: 'parse', ok: true, detail: `TDX quote v${q.version}${q.trailingBytes ? `, ${q.trailingBytes} unsigned trailing bytes ignored` : ''}` });
  } catch (err) {
    steps.push({ step: 'parse', ok: false, detail: errorMessage(err) });
    return { format: 'tdx', ok: false, verificationTime: at.toISOString(), steps, fields: {} };
  }
  const fields = tdxFields(q);
  let ak: ReturnType<typeof createPublicKey> | undefined;
  try {
    ak = p256Key(q.attestationKey);
  } catch (err) {
    steps.push({ step: 'quote-signature', ok: false, detail: `attestation key is not a P-256 point: ${errorMessage(err)}` });
  }
  if (ak) {
    const ok = cryptoVerify('sha256', q.signedBytes, { key: ak, dsaEncoding: 'ieee-p1363' }, q.signature);
    steps.push({ step: 'quote-signature', ok, detail: ok ? 'ECDSA P-256/SHA-256 by the attestation key over header and TD report' : 'quote signature does not verify' });
  }
  const pems = q.pckChainPem.match(PEM_RE) ?? [];
  let certs: X509Certificate[] = [];
  try {
    certs = pems.map((p) => new X509Certificate(p));
  } catch (err) {
    steps.push({ step: 'pck-chain', ok: false, detail: `PCK chain does not parse: ${errorMessage(err)}` });
  }
  const leaf = certs[0];
  if (leaf) {
    let ok = false;
    try {
      ok = cryptoVerify('sha256', q.qeReport, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, q.qeReportSignature);
    } catch {
      ok = false;
    }
    steps.push({ step: 'qe-report-signature', ok, detail: ok ? `QE report signed by the PCK key (${cn(leaf.subject)})` : 'QE report signature does not verify with the PCK key' });
  } else steps.push({ step: 'qe-report-signature', ok: false, detail: 'no PCK certificate in the quote' });
  const expect = Buffer.concat([createHash('sha256').update(q.attestationKey).update(q.qeAuthData).digest(), Buffer.alloc(32)]);
  const bindOk = expect.equals(Buffer.from(q.qeReport.subarray(320, 384)));
  steps.push({ step: 'qe-report-data-binding', ok: bindOk, detail: bindOk ? 'QE REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 0³²' : 'QE report does not vouch for this attestation key' });

  if (certs.length >= 2) {
    // Walk leaf -> ... -> a root; the root must be one we pinned, compared by DER, never the copy in the quote.
    let ok = true;
    let detail = '';
    for (let i = 0; i + 1 < certs.length; i++) {
      const c = certs[i] as X509Certificate;
      const issuer = certs[i + 1] as X509Certificate;
      if (!signedBy(c, issuer)) {
        ok = false;
        detail = `${cn(c.subject)} is not signed by ${cn(issuer.subject)}`;
        break;
      }
    }
    const top = certs[certs.length - 1] as X509Certificate;
    const pinned = roots.find((r) => r.cert.raw.equals(top.raw) || (r.cert.subject === r.cert.issuer && signedBy(top, r.cert)));
    if (ok && !pinned) {
      ok = false;
      detail = `chain ends at ${cn(top.subject)} (sha256 ${certSha256(top).slice(0, 16)}…), which is not a pinned root`;
    }
    if (ok && pinned && policy.rootFingerprints && !policy.rootFingerprints.includes(pinned.sha256)) {
      ok = false;
      detail = `root ${cn(pinned.cert.subject)} is not among the policy's rootFingerprints`;
    }
    if (ok && pinned) detail = certs.map((c) => cn(c.subject)).join(' ← ') + ` (pinned ${pinned.file})`;
    steps.push({ step: 'pck-chain', ok, detail });
    const expired = [...certs, ...(pinned ? [pinned.cert] : [])].filter((c) => !validAt(c, at));
    steps.push({
      step: 'validity',
      ok: expired.length === 0,
      detail: expired.length === 0 ? `all certificates valid at ${at.toISOString()}` : expired.map((c) => `${cn(c.subject)} valid ${c.validFrom} to ${c.validTo}`).join('; '),
    });
  } else if (certs.length > 0) steps.push({ step: 'pck-chain', ok: false, detail: 'PCK chain has no issuer certificates' });

  if (expectedReportData !== undefined) {
    const ok = Buffer.from(q.body.reportData).equals(Buffer.from(expectedReportData));
    steps.push({ step: 'report-data', ok, detail: ok ? 'REPORTDATA equals the recomputed binding' : 'REPORTDATA is not the expected binding' });
  }
  const allowDebug = policy.allowDebug ?? false;
  steps.push({ step: 'policy.debug', ok: allowDebug || !q.tdDebug, detail: q.tdDebug ? `TD allows debugging (TDATTRIBUTES.DEBUG)${allowDebug ? ', permitted by policy' : ''}` : 'debugging disabled' });
  const p = policy.tdx ?? {};
  const allow = (name: string, list: readonly string[] | undefined, v: Uint8Array): void => {
    if (list === undefined) return;
    steps.push({ step: `policy.${name}`, ok: list.includes(hex(v)), detail: `${name} ${hex(v)} ${list.includes(hex(v)) ? 'is' : 'is not'} allowed` });
  };
  allow('mr-td', p.mrTd, q.body.mrTd);
  allow('rtmr0', p.rtmr0, q.body.rtmrs[0]);
  allow('rtmr1', p.rtmr1, q.body.rtmrs[1]);
  allow('rtmr2', p.rtmr2, q.body.rtmrs[2]);
  allow('rtmr3', p.rtmr3, q.body.rtmrs[3]);
  if (p.quoteVersions) steps.push({ step: 'policy.quote-version', ok: p.quoteVersions.includes(q.version), detail: `version ${q.version}` });
  return { format: 'tdx', ok: verdictOk(steps), verificationTime: at.toISOString(), steps, fields };
}
