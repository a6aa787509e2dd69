import { createHash, verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { decidedOrThrow } from '../errors.js';
import type { JsonValue } from '../util/strict-json.js';
import { parseVekCert, type AmdVekCert } from './amd-cert.js';
import { issuedIn, revocationStep, validatePath, type PathSpec } from './cert-path.js';
import { cn, validAt, type PinnedCert } from './roots.js';
import { decodeTcb, hex, parseSnpReport, productFromCpuid, SNP_SIGNED_LENGTH, type SnpProduct, type SnpReport, type TcbParts } from './snp-report.js';
import type { EvidenceVerdict, Step, TeePolicy } from './tee-policy.js';
import { SIMULATED_FAMILY_ID } from './simulated.js';
import { verdictOk } from './tee-policy.js';

interface SnpEvidence {
  readonly report: Uint8Array;
  /** DER of the VCEK or VLEK that signed the report. */
  readonly vek: Uint8Array;
  /** What the caller says the certificate is (--vcek / --vlek), if anything. */
  readonly declaredKind?: 'VCEK' | 'VLEK';
  /** The 64 bytes REPORT_DATA must hold, when the caller knows them (binding to a key or trace). */
  readonly expectedReportData?: Uint8Array;
  /** AMD's CRL for the product (KDS /vcek/v1/<product>/crl, DER, signed by the ARK). */
  readonly crl?: Uint8Array;
}

/**
 * A builder's reports share one VCEK: its parse and its chain verdict are cached
 * per certificate (keyed by the SHA-256 of its DER), so verifying many reports
 * costs little more than their signatures.
 */
const chainCache = new Map<string, Step>();
const vekCache = new Map<string, AmdVekCert>();

function cachedVek(der: Uint8Array): { vek: AmdVekCert; digest: string } {
  const digest = createHash('sha256').update(der).digest('hex');
  let vek = vekCache.get(digest);
  if (!vek) {
    vek = parseVekCert(der);
    if (vekCache.size > 1000) vekCache.clear();
    vekCache.set(digest, vek);
  }
  return { vek, digest };
}

/**
 * AMD's roles (AMD 57230 §2; go-sev-guest validateArkX509/validateAskX509/validateKDSCertificate):
 * VCEK ← ASK ← ARK and VLEK ← ASVK ← ARK, the ASK/ASVK and the ARK pinned by the verifier's owner.
 */
const ARK = { role: 'ARK', cn: /^ARK-(Milan|Genoa|Turin)$/ };
const AMD_PATHS: Record<'VCEK' | 'VLEK', PathSpec> = {
  VCEK: {
    below: [
      { role: 'VCEK', cn: /^SEV-VCEK$/ },
      { role: 'ASK', cn: /^SEV-(Milan|Genoa|Turin)$/ },
    ],
    root: ARK,
  },
  VLEK: {
    below: [
      { role: 'VLEK', cn: /^SEV-VLEK$/ },
      { role: 'ASVK', cn: /^SEV-VLEK-(Milan|Genoa|Turin)$/ },
    ],
    root: ARK,
  },
};

function chainStep(
  vek: AmdVekCert,
  roots: readonly PinnedCert[],
  product: SnpProduct | undefined,
  pins: readonly string[] | undefined,
): Step & { certs?: readonly X509Certificate[] } {
  const path = validatePath([vek.cert], AMD_PATHS[vek.kind], roots, pins);
  if (!path.ok) return { step: 'chain', ok: false, detail: path.detail };
  const arkName = cn(path.pinned.cert.subject) ?? '';
  if (product !== undefined && arkName !== `ARK-${product}`) {
    return { step: 'chain', ok: false, detail: `report is from a ${product} CPU but the chain ends at ${arkName}` };
  }
  return { step: 'chain', ok: true, detail: `${vek.kind} ← ${path.detail}, sha256 ${path.pinned.sha256.slice(0, 16)}…`, certs: path.certs };
}

function tcbEqual(a: TcbParts, b: TcbParts): boolean {
  return a.bootloader === b.bootloader && a.tee === b.tee && a.snp === b.snp && a.microcode === b.microcode && (a.fmc ?? 0) === (b.fmc ?? 0);
}

function fmtTcb(t: TcbParts): string {
  return `bl ${t.bootloader}, tee ${t.tee}, snp ${t.snp}, ucode ${t.microcode}${t.fmc !== undefined ? `, fmc ${t.fmc}` : ''}`;
}

function productFromName(name: string | undefined): SnpProduct | undefined {
  const m = /^(Milan|Genoa|Turin)/.exec(name ?? '');
  return m ? (m[1] as SnpProduct) : undefined;
}

function snpFields(r: SnpReport, product: SnpProduct | undefined): Record<string, JsonValue> {
  return {
    version: r.version,
    guest_svn: r.guestSvn,
    policy: `0x${r.policy.raw.toString(16)}`,
    policy_debug: r.policy.debug,
    policy_smt: r.policy.smt,
    policy_migrate_ma: r.policy.migrateMa,
    vmpl: r.vmpl,
    signature_algo: r.signatureAlgo,
    signing_key: r.signingKey,
    platform_info: `0x${r.platformInfo.toString(16)}`,
    product: product ?? null,
    family_id: hex(r.familyId),
    image_id: hex(r.imageId),
    current_tcb: hex(r.currentTcb),
    reported_tcb: hex(r.reportedTcb),
    reported_tcb_parts: { ...decodeTcb(r.reportedTcb, product) },
    committed_tcb: hex(r.committedTcb),
    launch_tcb: hex(r.launchTcb),
    current_version: r.currentVersion,
    report_data: hex(r.reportData),
    measurement: hex(r.measurement),
    host_data: hex(r.hostData),
    chip_id: hex(r.chipId),
    report_id: hex(r.reportId),
    ...(Buffer.from(r.familyId).equals(SIMULATED_FAMILY_ID) ? { simulated_marker: true } : {}),
  };
}

/**
 * AMD's CRL (KDS /vcek/v1/<product>/crl, /vlek/v1/<product>/crl) is the ARK's: it covers what
 * the ARK issued, the ASK or ASVK. VCEKs and VLEKs are issued by the ASK/ASVK, which has no
 * cRLSign (AMD's real ASKs) and publishes no CRL; a VCEK is superseded by TCB, not revoked
 * (go-sev-guest verify.go). Without a CRL, revocation is unchecked and the verdict says so;
 * "snp.requireCrl" makes that a failure.
 */
function snpCrlStep(der: Uint8Array | undefined, certs: readonly X509Certificate[] | undefined, at: Date, required: boolean): Step {
  if (der === undefined)
    return {
      step: 'crl',
      ok: required ? false : null,
      detail: `revocation not checked: no AMD CRL given (--crl, or "crl" in the trust policy)${required ? ' and the policy sets snp.requireCrl' : ''}`,
    };
  return revocationStep(
    'crl',
    der,
    issuedIn(certs, (i, n) => i === n - 1),
    at,
  );
}

export function verifySnp(ev: SnpEvidence, roots: readonly PinnedCert[], at: Date, policy: TeePolicy): EvidenceVerdict {
  const steps: Step[] = [];
  const done = (fields: Record<string, JsonValue>): EvidenceVerdict => ({
    format: 'sev-snp',
    ok: verdictOk(steps),
    verificationTime: at.toISOString(),
    steps,
    fields,
  });
  let r: SnpReport;
  try {
    r = parseSnpReport(ev.report);
    steps.push({ step: 'parse', ok: true, detail: `SEV-SNP report v${r.version}, signed by ${r.signingKey}` });
  } catch (err) {
    steps.push({ step: 'parse', ok: false, detail: decidedOrThrow(err).message });
    return done({});
  }
  let vek: AmdVekCert;
  let vekDigest: string;
  try {
    ({ vek, digest: vekDigest } = cachedVek(ev.vek));
  } catch (err) {
    steps.push({ step: 'endorsement-key', ok: false, detail: decidedOrThrow(err).message });
    return done(snpFields(r, productFromCpuid(r)));
  }
  const product = productFromCpuid(r) ?? productFromName(vek.productName);
  const fields = snpFields(r, product);
  if (r.signingKey === 'none') steps.push({ step: 'endorsement-key', ok: false, detail: 'report is unsigned (SIGNING_KEY 7)' });
  else if (r.signingKey !== vek.kind)
    steps.push({ step: 'endorsement-key', ok: false, detail: `report says ${r.signingKey} but the certificate is a ${vek.kind}` });
  else if (ev.declaredKind !== undefined && ev.declaredKind !== vek.kind)
    steps.push({ step: 'endorsement-key', ok: false, detail: `given as --${ev.declaredKind.toLowerCase()} but the certificate is a ${vek.kind}` });
  else steps.push({ step: 'endorsement-key', ok: true, detail: `${vek.kind}${vek.productName ? ` (${vek.productName})` : ''}` });

  // signature: ECDSA P-384 / SHA-384 over bytes 0..0x29F, r and s little-endian in the report
  const sig = Buffer.concat([r.signatureR, r.signatureS]);
  let sigOk = false;
  try {
    sigOk = cryptoVerify('sha384', r.bytes.subarray(0, SNP_SIGNED_LENGTH), { key: vek.cert.publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    sigOk = false;
  }
  steps.push({
    step: 'signature',
    ok: sigOk,
    detail: sigOk ? 'ECDSA P-384/SHA-384 by the endorsement key' : 'report signature does not verify with this endorsement key',
  });

  const cacheKey = `${vekDigest}|${product}|${(policy.rootFingerprints ?? []).join(',')}|${roots.map((x) => x.sha256).join(',')}`;
  let chain = chainCache.get(cacheKey) as (Step & { certs?: readonly X509Certificate[] }) | undefined;
  if (!chain) {
    chain = chainStep(vek, roots, product, policy.rootFingerprints);
    if (chainCache.size > 1000) chainCache.clear();
    chainCache.set(cacheKey, chain);
  }
  steps.push({ step: chain.step, ok: chain.ok, detail: chain.detail });

  const reported = decodeTcb(r.reportedTcb, product);
  const tcbOk = tcbEqual(reported, vek.tcb) && vek.reservedSplsZero && (product === 'Turin' || r.reportedTcb.subarray(2, 6).every((x) => x === 0));
  steps.push({ step: 'tcb-binding', ok: tcbOk, detail: `REPORTED_TCB ${fmtTcb(reported)}; certificate ${fmtTcb(vek.tcb)}` });

  if (vek.kind === 'VCEK') {
    const chipZero = r.chipId.every((x) => x === 0);
    if (chipZero) steps.push({ step: 'chip-id-binding', ok: null, detail: 'CHIP_ID is masked (all zero); not compared' });
    else if (!vek.hwId) steps.push({ step: 'chip-id-binding', ok: false, detail: 'VCEK has no hwID extension' });
    else {
      const n = product === 'Turin' ? 8 : 64;
      const ok = Buffer.from(r.chipId.subarray(0, n)).equals(Buffer.from(vek.hwId.subarray(0, n))) && vek.hwId.length === n;
      steps.push({
        step: 'chip-id-binding',
        ok,
        detail: ok ? `CHIP_ID equals the VCEK hwID` : `CHIP_ID ${hex(r.chipId).slice(0, 16)}… differs from hwID ${hex(vek.hwId).slice(0, 16)}…`,
      });
    }
  } else {
    steps.push({ step: 'chip-id-binding', ok: null, detail: `VLEK (cspID ${JSON.stringify(vek.cspId ?? '')}); no chip id to compare` });
  }

  const certs = chain.certs ?? [vek.cert];
  const expired = certs.filter((c) => !validAt(c, at));
  steps.push({
    step: 'validity',
    ok: expired.length === 0,
    detail:
      expired.length === 0
        ? `all certificates valid at ${at.toISOString()}`
        : `${expired.map((c) => `${cn(c.subject)} valid ${c.validFrom} to ${c.validTo}`).join('; ')} — not at ${at.toISOString()}`,
  });

  steps.push(snpCrlStep(ev.crl, chain.certs, at, policy.snp?.requireCrl === true));

  if (ev.expectedReportData !== undefined) {
    const ok = Buffer.from(r.reportData).equals(Buffer.from(ev.expectedReportData));
    steps.push({
      step: 'report-data',
      ok,
      detail: ok
        ? 'REPORT_DATA equals the recomputed binding'
        : `REPORT_DATA ${hex(r.reportData).slice(0, 32)}… is not the expected ${hex(ev.expectedReportData).slice(0, 32)}…`,
    });
  }

  // policy
  const allowDebug = policy.allowDebug ?? false;
  steps.push({
    step: 'policy.debug',
    ok: allowDebug || !r.policy.debug,
    detail: r.policy.debug ? `guest allows debugging (POLICY.DEBUG)${allowDebug ? ', permitted by policy' : ''}` : 'debugging disabled',
  });
  const p = policy.snp ?? {};
  // An unset VMPL means 0, the most privileged level (trustee's SNP verifier; AWS reports at
  // VMPL 1 exist): a guest's lower-privileged software must be accepted by name ("any" or 1-3).
  const vmpl = p.vmpl ?? 0;
  steps.push({
    step: 'policy.vmpl',
    ok: vmpl === 'any' || r.vmpl === vmpl,
    detail: `VMPL ${r.vmpl}, ${vmpl === 'any' ? 'any accepted' : `required ${vmpl}${p.vmpl === undefined ? ' (the default; "vmpl": "any" opts out)' : ''}`}`,
  });
  if (p.measurements !== undefined || policy.anyMeasurement !== true) {
    const m = hex(r.measurement);
    const list = p.measurements ?? [];
    steps.push({
      step: 'policy.measurement',
      ok: list.includes(m),
      detail:
        list.length === 0
          ? `MEASUREMENT ${m}: the policy lists no SEV-SNP measurements ("anyMeasurement": true opts out)`
          : `MEASUREMENT ${m} ${list.includes(m) ? 'is' : 'is not'} allowed`,
    });
  }
  if (p.hostData !== undefined) {
    const h = hex(r.hostData);
    steps.push({ step: 'policy.host-data', ok: p.hostData.includes(h), detail: `HOST_DATA ${h}` });
  }
  if (p.signingKeys !== undefined) {
    steps.push({ step: 'policy.signing-key', ok: p.signingKeys.includes(vek.kind), detail: `${vek.kind}; allowed ${p.signingKeys.join(', ')}` });
  }
  if (p.reportVersions !== undefined) {
    steps.push({
      step: 'policy.report-version',
      ok: p.reportVersions.includes(r.version),
      detail: `version ${r.version}; allowed ${p.reportVersions.join(', ')}`,
    });
  }
  if (p.minimumTcb === undefined && policy.anyTcb !== true) {
    steps.push({ step: 'policy.minimum-tcb', ok: false, detail: 'the policy sets no snp.minimumTcb ("anyTcb": true opts out)' });
  }
  if (p.minimumTcb !== undefined) {
    const low = (Object.entries(p.minimumTcb) as [keyof TcbParts, number][]).filter(([k, min]) => (reported[k] ?? 0) < min);
    steps.push({
      step: 'policy.minimum-tcb',
      ok: low.length === 0,
      detail: low.length === 0 ? `REPORTED_TCB ${fmtTcb(reported)} meets the minimum` : low.map(([k, min]) => `${k} ${reported[k] ?? 0} < ${min}`).join(', '),
    });
  }
  return done(fields);
}
