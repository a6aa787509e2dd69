import { verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { BuildtraceError, errorMessage } from '../errors.js';
import { isObject, parseStrictJson, type JsonValue } from '../util/strict-json.js';
import { issuedIn, revocationStep, validatePath, type PathSpec } from './cert-path.js';
import { rawMember } from './raw-json.js';
import { cn, pemCertificates, validAt, type PinnedCert } from './roots.js';
import { parsePckExtensions, type PckExtensions } from './sgx-pck.js';
import { hex } from './snp-report.js';
import type { TdxQuote } from './tdx-quote.js';
import type { Step, TeePolicy } from './tee-policy.js';

/**
 * Intel PCS collateral for one TDX quote, as files the verifier was given (offline):
 * the TDX TCB info and TD QE identity JSON (as served, signature inside), the TCB signing
 * chain that signed them (PCS header TCB-Info-Issuer-Chain), the PCK CRL of the PCK's
 * issuing CA and the Intel SGX Root CA CRL.
 */
export interface TdxCollateral {
  readonly source: string;
  readonly tcbInfo: string;
  readonly qeIdentity: string;
  readonly signingChainPem: string;
  readonly pckCrl: Uint8Array;
  readonly rootCrl: Uint8Array;
}

/**
 * Intel's certificate roles (Intel QVL X509Constants: the CN of each position; PckCertVerifier,
 * TCBSigningChain): PCK certificate ← PCK Platform or Processor CA ← Intel SGX Root CA, and
 * TCB info and QE identity signed only by the TCB Signing certificate, issued by the root itself.
 */
const INTEL_ROOT = { role: 'Intel SGX Root CA', cn: /^Intel SGX Root CA$/ };
export const PCK_PATH: PathSpec = {
  below: [
    { role: 'PCK certificate', cn: /^Intel SGX PCK Certificate$/ },
    { role: 'PCK Platform/Processor CA', cn: /^Intel SGX PCK (Platform|Processor) CA$/ },
  ],
  root: INTEL_ROOT,
};
const TCB_SIGNING_PATH: PathSpec = { below: [{ role: 'TCB Signing certificate', cn: /^Intel SGX TCB Signing$/ }], root: INTEL_ROOT };

const DEFAULT_ACCEPTED_TCB_STATUSES = ['UpToDate'] as const;

interface Level {
  readonly status: string;
  readonly advisories: readonly string[];
}

function fail(subject: string, msg: string): never {
  throw new BuildtraceError('EVIDENCE_INVALID', `${subject}: ${msg}`, { subject });
}

type Obj = { [k: string]: JsonValue };
const obj = (v: JsonValue | undefined, what: string, s: string): Obj => (isObject(v) ? v : fail(s, `${what} is not an object`));
const arr = (v: JsonValue | undefined, what: string, s: string): JsonValue[] => (Array.isArray(v) ? v : fail(s, `${what} is not an array`));
const num = (v: JsonValue | undefined, what: string, s: string): number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fail(s, `${what} is not a non-negative integer`);
const str = (v: JsonValue | undefined, what: string, s: string): string => (typeof v === 'string' ? v : fail(s, `${what} is not a string`));
const hexBytes = (v: JsonValue | undefined, what: string, s: string, len: number): Buffer => {
  const t = str(v, what, s);
  if (!new RegExp(`^[0-9a-fA-F]{${len * 2}}$`).test(t)) fail(s, `${what} is not ${len} bytes of hex`);
  return Buffer.from(t, 'hex');
};
const date = (v: JsonValue | undefined, what: string, s: string): Date => {
  const d = new Date(str(v, what, s));
  return Number.isNaN(d.getTime()) ? fail(s, `${what} is not a date`) : d;
};

function level(l: Obj, s: string): Level {
  return {
    status: str(l['tcbStatus'], 'tcbStatus', s),
    advisories: Array.isArray(l['advisoryIDs']) ? l['advisoryIDs'].filter((x): x is string => typeof x === 'string') : [],
  };
}

/** A signed PCS document: the signed member's text, its parsed value, the signature check. */
function signedDoc(text: string, member: string, subject: string, signer: X509Certificate | undefined): { body: Obj; sigOk: boolean } {
  const whole = obj(parseStrictJson(text, subject), subject, subject);
  const raw = rawMember(text, member, subject);
  const body = obj(whole[member], member, subject);
  const sig = hexBytes(whole['signature'], 'signature', subject, 64);
  let sigOk = false;
  if (signer) {
    try {
      sigOk = cryptoVerify('sha256', Buffer.from(raw, 'utf8'), { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, sig);
    } catch {
      sigOk = false;
    }
  }
  return { body, sigOk };
}

function fresh(body: Obj, at: Date, s: string): string | undefined {
  const issue = date(body['issueDate'], 'issueDate', s);
  const next = date(body['nextUpdate'], 'nextUpdate', s);
  if (at < issue || at > next) return `issued ${issue.toISOString()}, next update ${next.toISOString()}: not current at ${at.toISOString()}`;
  return undefined;
}

function tdxLevelMatches(teeTcbSvn: Uint8Array, comps: JsonValue[], s: string): boolean {
  if (comps.length !== 16) fail(s, 'tdxtcbcomponents does not have 16 entries');
  // TDX 1.5: with a module major version (byte 1) the first two bytes are judged by tdxModuleIdentities.
  const start = (teeTcbSvn[1] as number) > 0 ? 2 : 0;
  for (let i = start; i < 16; i++) if ((teeTcbSvn[i] as number) < num(obj(comps[i], 'component', s)['svn'], 'svn', s)) return false;
  return true;
}

/** Intel's TCB level matching (go-tdx-guest verify.getMatchingTcbLevel; Intel TDX DCAP QVL). */
function tdxTcbLevel(tcbInfo: Obj, pck: PckExtensions, teeTcbSvn: Uint8Array, s: string): { level: Level; index: number; module?: Level } | undefined {
  const levels = arr(tcbInfo['tcbLevels'], 'tcbLevels', s);
  for (let idx = 0; idx < levels.length; idx++) {
    const l = obj(levels[idx], 'tcbLevel', s);
    const tcb = obj(l['tcb'], 'tcb', s);
    const sgx = arr(tcb['sgxtcbcomponents'], 'sgxtcbcomponents', s);
    if (sgx.length !== 16) fail(s, 'sgxtcbcomponents does not have 16 entries');
    if (!pck.sgxTcbComponents.every((v, i) => v >= num(obj(sgx[i], 'component', s)['svn'], 'svn', s))) continue;
    if (pck.pceSvn < num(tcb['pcesvn'], 'pcesvn', s)) continue;
    if (!tdxLevelMatches(teeTcbSvn, arr(tcb['tdxtcbcomponents'], 'tdxtcbcomponents', s), s)) continue;
    const found = { level: level(l, s), index: idx };
    if ((teeTcbSvn[1] as number) === 0) return found;
    const id = `TDX_${(teeTcbSvn[1] as number).toString(16).padStart(2, '0').toUpperCase()}`;
    const mod = arr(tcbInfo['tdxModuleIdentities'] ?? [], 'tdxModuleIdentities', s)
      .map((m) => obj(m, 'tdxModuleIdentity', s))
      .find((m) => String(m['id']).toUpperCase() === id);
    if (!mod) return { ...found, module: { status: `no TDX module identity ${id}`, advisories: [] } };
    for (const ml of arr(mod['tcbLevels'], 'tcbLevels', s)) {
      const mo = obj(ml, 'tcbLevel', s);
      if ((teeTcbSvn[0] as number) >= num(obj(mo['tcb'], 'tcb', s)['isvsvn'], 'isvsvn', s)) return { ...found, module: level(mo, s) };
    }
    return { ...found, module: { status: `no ${id} level for module SVN ${teeTcbSvn[0]}`, advisories: [] } };
  }
  return undefined;
}

function masked(value: Uint8Array, mask: Uint8Array): Buffer {
  return Buffer.from(value.map((b, i) => b & (mask[i] ?? 0)));
}

/**
 * The collateral steps for one quote: `pckLeaf` is the quote's PCK certificate, `pckPath` its
 * validated path (leaf to pinned root) or undefined when that failed.
 */
export function checkTdxCollateral(
  q: TdxQuote,
  pckLeaf: X509Certificate | undefined,
  pckPath: readonly X509Certificate[] | undefined,
  c: TdxCollateral,
  roots: readonly PinnedCert[],
  at: Date,
  policy: TeePolicy,
): Step[] {
  const steps: Step[] = [];
  const accepted: readonly string[] = policy.tdx?.acceptedTcbStatuses ?? DEFAULT_ACCEPTED_TCB_STATUSES;
  const s = c.source;

  // 1. the TCB signing chain: Intel SGX TCB Signing, issued directly by a pinned Intel SGX Root CA
  let signing: X509Certificate[] = [];
  try {
    signing = pemCertificates(c.signingChainPem);
  } catch (err) {
    steps.push({ step: 'collateral.signing-chain', ok: false, detail: `does not parse: ${errorMessage(err)}` });
  }
  const signer = signing[0];
  let signerOk = false;
  let signingPath: readonly X509Certificate[] | undefined;
  if (signer) {
    const chain = validatePath(signing, TCB_SIGNING_PATH, roots, policy.rootFingerprints);
    if (chain.ok) signingPath = chain.certs;
    const expired = (chain.ok ? chain.certs : signing).filter((x) => !validAt(x, at));
    signerOk = chain.ok && expired.length === 0;
    steps.push({
      step: 'collateral.signing-chain',
      ok: signerOk,
      detail: !chain.ok
        ? `TCB signing chain: ${chain.detail}`
        : expired.length > 0
          ? `${expired.map((x) => `${cn(x.subject)} valid ${x.validFrom} to ${x.validTo}`).join('; ')} — not at ${at.toISOString()}`
          : `TCB signing chain ${chain.detail}`,
    });
  } else if (steps.length === 0) steps.push({ step: 'collateral.signing-chain', ok: false, detail: `${s}: no certificate in the TCB signing chain` });

  // 2. CRLs, each applied to everything its issuer issued in either path, whether or not the
  // evidence carried the root: the root CRL to the PCK CA and the TCB Signing certificate, the
  // PCK CRL (from the PCK's own issuing CA) to the PCK certificate.
  const isRoot = (i: number, n: number): boolean => i === n - 1;
  steps.push(revocationStep('collateral.root-crl', c.rootCrl, [...issuedIn(pckPath, isRoot), ...issuedIn(signingPath, isRoot)], at));
  steps.push(
    revocationStep(
      'collateral.pck-crl',
      c.pckCrl,
      issuedIn(pckPath, (i) => i === 1),
      at,
    ),
  );

  // 3. TCB info and QE identity: Intel's signature over the exact member text, id, version, freshness
  let pck: PckExtensions | undefined;
  try {
    if (pckLeaf) pck = parsePckExtensions(pckLeaf.raw);
  } catch (err) {
    steps.push({ step: 'collateral.fmspc', ok: false, detail: errorMessage(err) });
  }
  const doc = (name: string, text: string, member: string, id: string, version: number): Obj | undefined => {
    try {
      const { body, sigOk } = signedDoc(text, member, `${s}: ${member}`, signerOk ? signer : undefined);
      const stale = fresh(body, at, `${s}: ${member}`);
      const why = !signerOk
        ? 'its signing chain is not trusted'
        : !sigOk
          ? `signature does not verify with ${cn(signer?.subject ?? '')}`
          : body['id'] !== id
            ? `id ${JSON.stringify(body['id'])} is not ${id}`
            : body['version'] !== version
              ? `version ${JSON.stringify(body['version'])} is not ${version}`
              : stale;
      steps.push({
        step: name,
        ok: why === undefined,
        detail: why ?? `signed by ${cn(signer?.subject ?? '')}, ${id} v${version}, current at ${at.toISOString()}`,
      });
      return why === undefined ? body : undefined;
    } catch (err) {
      steps.push({ step: name, ok: false, detail: errorMessage(err) });
      return undefined;
    }
  };
  const tcbInfo = doc('collateral.tcb-info', c.tcbInfo, 'tcbInfo', 'TDX', 3);
  const qeId = doc('collateral.qe-identity-signature', c.qeIdentity, 'enclaveIdentity', 'TD_QE', 2);

  // 4. the platform is the one the TCB info is about; the SEAM module is Intel's
  if (tcbInfo && pck) {
    const why: string[] = [];
    if (String(tcbInfo['fmspc']).toLowerCase() !== pck.fmspc) why.push(`PCK FMSPC ${pck.fmspc} ≠ TCB info FMSPC ${String(tcbInfo['fmspc'])}`);
    if (String(tcbInfo['pceId']).toLowerCase() !== pck.pceId) why.push(`PCK PCE-ID ${pck.pceId} ≠ TCB info ${String(tcbInfo['pceId'])}`);
    try {
      const mod = obj(tcbInfo['tdxModule'], 'tdxModule', s);
      if (!hexBytes(mod['mrsigner'], 'tdxModule.mrsigner', s, 48).equals(Buffer.from(q.body.mrSignerSeam)))
        why.push(`MRSIGNERSEAM ${hex(q.body.mrSignerSeam)} is not Intel's`);
      const mask = hexBytes(mod['attributesMask'], 'tdxModule.attributesMask', s, 8);
      if (!masked(q.body.seamAttributes, mask).equals(hexBytes(mod['attributes'], 'tdxModule.attributes', s, 8)))
        why.push(`SEAMATTRIBUTES ${hex(q.body.seamAttributes)} do not match`);
    } catch (err) {
      why.push(errorMessage(err));
    }
    steps.push({
      step: 'collateral.fmspc',
      ok: why.length === 0,
      detail: why.length === 0 ? `FMSPC ${pck.fmspc}, PCE-ID ${pck.pceId} match the TCB info; TDX module signer matches` : why.join('; '),
    });
  }

  // 5. the quote was signed by Intel's TD Quoting Enclave, at an accepted TCB level
  if (qeId) {
    const r = q.qeReport;
    const why: string[] = [];
    let status = '';
    try {
      const misc = r.subarray(16, 20);
      if (!masked(misc, hexBytes(qeId['miscselectMask'], 'miscselectMask', s, 4)).equals(hexBytes(qeId['miscselect'], 'miscselect', s, 4)))
        why.push(`MISCSELECT ${hex(misc)} does not match`);
      const attrs = r.subarray(48, 64);
      if (!masked(attrs, hexBytes(qeId['attributesMask'], 'attributesMask', s, 16)).equals(hexBytes(qeId['attributes'], 'attributes', s, 16)))
        why.push(`ATTRIBUTES ${hex(attrs)} do not match`);
      const mrsigner = r.subarray(128, 160);
      if (!hexBytes(qeId['mrsigner'], 'mrsigner', s, 32).equals(Buffer.from(mrsigner)))
        why.push(`MRSIGNER ${hex(mrsigner)} is not ${String(qeId['mrsigner']).toLowerCase()}`);
      const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
      const prod = dv.getUint16(256, true);
      const svn = dv.getUint16(258, true);
      if (prod !== num(qeId['isvprodid'], 'isvprodid', s)) why.push(`ISVPRODID ${prod} is not ${String(qeId['isvprodid'])}`);
      const lv = arr(qeId['tcbLevels'], 'tcbLevels', s)
        .map((l) => obj(l, 'tcbLevel', s))
        .find((l) => num(obj(l['tcb'], 'tcb', s)['isvsvn'], 'isvsvn', s) <= svn);
      status = lv ? level(lv, s).status : `no QE TCB level for ISVSVN ${svn}`;
      if (!accepted.includes(status)) why.push(`QE ISVSVN ${svn}: TCB status ${status} is not accepted (${accepted.join(', ')})`);
    } catch (err) {
      why.push(errorMessage(err));
    }
    steps.push({
      step: 'collateral.qe-identity',
      ok: why.length === 0,
      detail: why.length === 0 ? `QE report is Intel's TD QE (MRSIGNER, ISVPRODID match; ${status})` : why.join('; '),
    });
  }

  // 6. TCB status of the platform and the TDX module
  if (tcbInfo && pck) {
    try {
      const m = tdxTcbLevel(tcbInfo, pck, q.body.teeTcbSvn, s);
      if (!m)
        steps.push({
          step: 'collateral.tcb-status',
          ok: false,
          detail: `no TCB level matches (PCK SVNs ${pck.sgxTcbComponents.join('.')}, PCESVN ${pck.pceSvn}, TEE_TCB_SVN ${hex(q.body.teeTcbSvn)}): TCB not supported`,
        });
      else {
        const st = m.module ?? m.level;
        const statuses = m.module ? [m.level.status, m.module.status] : [m.level.status];
        const ok = statuses.every((x) => accepted.includes(x));
        const adv = [...m.level.advisories, ...(m.module?.advisories ?? [])];
        steps.push({
          step: 'collateral.tcb-status',
          ok,
          detail: `TCB level ${m.index}: ${statuses.join(' / ')}${adv.length ? ` (advisories ${adv.join(', ')})` : ''}; accepted: ${accepted.join(', ')}${ok ? '' : ` — ${st.status} is not accepted`}`,
        });
      }
    } catch (err) {
      steps.push({ step: 'collateral.tcb-status', ok: false, detail: errorMessage(err) });
    }
  }
  return steps;
}
