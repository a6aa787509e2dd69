import { createHash, createPublicKey, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { decidedOrThrow, errorMessage } from '../errors.js';
import type { JsonValue } from '../util/strict-json.js';
import { validatePath } from './cert-path.js';
import { cn, validAt, type PinnedCert } from './roots.js';
import { checkTdxCollateral, PCK_PATH, type TdxCollateral } from './tdx-collateral.js';
import { hex } from './snp-report.js';
import { parseTdxQuote, type TdxQuote } from './tdx-quote.js';
import { verdictOk, type EvidenceVerdict, type Step, type TeePolicy } from './tee-policy.js';

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function p256Key(xy: Uint8Array): ReturnType<typeof createPublicKey> {
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: Buffer.from(xy.subarray(0, 32)).toString('base64url'), y: Buffer.from(xy.subarray(32, 64)).toString('base64url') },
    format: 'jwk',
  });
}

function tdxFields(q: TdxQuote): Record<string, JsonValue> {
  return {
    version: q.version,
    attestation_key_type: q.attestationKeyType,
    tee_type: `0x${q.teeType.toString(16)}`,
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
    report_data_offset: `0x${q.reportDataOffset.toString(16)}`,
    trailing_bytes: q.trailingBytes,
  };
}

export function verifyTdx(
  bytes: Uint8Array,
  roots: readonly PinnedCert[],
  at: Date,
  policy: TeePolicy,
  expectedReportData?: Uint8Array,
  collateral?: TdxCollateral,
): EvidenceVerdict {
  const steps: Step[] = [];
  let q: TdxQuote;
  try {
    q = parseTdxQuote(bytes);
    steps.push({ step: 'parse', ok: true, detail: `TDX quote v${q.version}${q.trailingBytes ? `, ${q.trailingBytes} unsigned trailing bytes ignored` : ''}` });
  } catch (err) {
    steps.push({ step: 'parse', ok: false, detail: decidedOrThrow(err).message });
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
    steps.push({
      step: 'quote-signature',
      ok,
      detail: ok ? 'ECDSA P-256/SHA-256 by the attestation key over header and TD report' : 'quote signature does not verify',
    });
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
    steps.push({
      step: 'qe-report-signature',
      ok,
      detail: ok ? `QE report signed by the PCK key (${cn(leaf.subject)})` : 'QE report signature does not verify with the PCK key',
    });
  } else steps.push({ step: 'qe-report-signature', ok: false, detail: 'no PCK certificate in the quote' });
  const expect = Buffer.concat([createHash('sha256').update(q.attestationKey).update(q.qeAuthData).digest(), Buffer.alloc(32)]);
  const bindOk = expect.equals(Buffer.from(q.qeReport.subarray(320, 384)));
  steps.push({
    step: 'qe-report-data-binding',
    ok: bindOk,
    detail: bindOk ? 'QE REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 0³²' : 'QE report does not vouch for this attestation key',
  });

  let pckPath: readonly X509Certificate[] | undefined;
  if (certs.length > 0) {
    const chain = validatePath(certs, PCK_PATH, roots, policy.rootFingerprints);
    steps.push({ step: 'pck-chain', ok: chain.ok, detail: chain.detail });
    if (chain.ok) pckPath = chain.certs;
    const expired = (chain.ok ? chain.certs : certs).filter((c) => !validAt(c, at));
    steps.push({
      step: 'validity',
      ok: expired.length === 0,
      detail:
        expired.length === 0
          ? `all certificates valid at ${at.toISOString()}`
          : expired.map((c) => `${cn(c.subject)} valid ${c.validFrom} to ${c.validTo}`).join('; '),
    });
  }

  // Without Intel's collateral nothing ties the PCK-certified key to Intel's QE or says the TCB is current.
  if (collateral) steps.push(...checkTdxCollateral(q, certs[0], pckPath, collateral, roots, at, policy));
  else if (policy.anyTcb === true)
    steps.push({ step: 'collateral', ok: null, detail: 'not checked (no --collateral): QE identity, TCB status and CRLs are unverified' });
  else
    steps.push({
      step: 'collateral',
      ok: false,
      detail: 'the policy needs Intel collateral (QE identity, TCB info, CRLs) and none was given; "anyTcb": true opts out',
    });

  if (expectedReportData !== undefined) {
    const ok = Buffer.from(q.body.reportData).equals(Buffer.from(expectedReportData));
    steps.push({ step: 'report-data', ok, detail: ok ? 'REPORTDATA equals the recomputed binding' : 'REPORTDATA is not the expected binding' });
  }
  const allowDebug = policy.allowDebug ?? false;
  steps.push({
    step: 'policy.debug',
    ok: allowDebug || !q.tdDebug,
    detail: q.tdDebug ? `TD allows debugging (TDATTRIBUTES.DEBUG)${allowDebug ? ', permitted by policy' : ''}` : 'debugging disabled',
  });
  const p = policy.tdx ?? {};
  const allow = (name: string, list: readonly string[] | undefined, v: Uint8Array): void => {
    if (list === undefined) return;
    steps.push({ step: `policy.${name}`, ok: list.includes(hex(v)), detail: `${name} ${hex(v)} ${list.includes(hex(v)) ? 'is' : 'is not'} allowed` });
  };
  allow('mr-td', p.mrTd ?? (policy.anyMeasurement === true ? undefined : []), q.body.mrTd);
  allow('mr-seam', p.mrSeam, q.body.mrSeam);
  if (p.minimumTeeTcbSvn !== undefined) {
    const min = Buffer.from(p.minimumTeeTcbSvn, 'hex');
    const low = [...q.body.teeTcbSvn].map((b, i) => [i, b, min[i] ?? 0] as const).filter(([, b, m]) => b < m);
    steps.push({
      step: 'policy.minimum-tee-tcb-svn',
      ok: low.length === 0,
      detail:
        low.length === 0 ? `TEE_TCB_SVN ${hex(q.body.teeTcbSvn)} meets ${p.minimumTeeTcbSvn}` : low.map(([i, b, m]) => `byte ${i}: ${b} < ${m}`).join(', '),
    });
  }
  allow('rtmr0', p.rtmr0, q.body.rtmrs[0]);
  allow('rtmr1', p.rtmr1, q.body.rtmrs[1]);
  allow('rtmr2', p.rtmr2, q.body.rtmrs[2]);
  allow('rtmr3', p.rtmr3, q.body.rtmrs[3]);
  if (p.quoteVersions) steps.push({ step: 'policy.quote-version', ok: p.quoteVersions.includes(q.version), detail: `version ${q.version}` });
  return { format: 'tdx', ok: verdictOk(steps), verificationTime: at.toISOString(), steps, fields };
}
