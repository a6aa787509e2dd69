import type { X509Certificate } from 'node:crypto';
import { BuildtraceError, errorMessage } from '../errors.js';
import { crlCurrent, crlSignedBy, isRevoked, parseCrl, type Crl } from './crl.js';
import { certificateExtensionList, children, decodeInteger, readTlv } from './der.js';
import { certSha256, cn, type PinnedCert } from './roots.js';
import type { Step } from './tee-policy.js';

/**
 * Certification paths validated by role (docs/tee.md "Certificate roles and revocation").
 * Every vendor chain has a fixed shape: a leaf with one job (PCK key, TCB signing, VCEK/VLEK),
 * the CAs above it and a pinned self-signed root. Each position has an expected subject CN
 * (Intel QVL PckCertVerifier/TCBSigningChain, go-sev-guest validateAskX509) and RFC 5280's
 * CA rules hold on every issuer: basicConstraints cA (§6.1.4 k), pathLenConstraint (§6.1.4 l, m),
 * keyUsage keyCertSign (§6.1.4 n); unknown critical extensions make a certificate unusable
 * (§6.1.3 / §4.2).
 */

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
/** Extensions understood here or harmless to ignore; any other critical one is refused. */
const UNDERSTOOD = new Set([BASIC_CONSTRAINTS, KEY_USAGE, '2.5.29.14', '2.5.29.35', '2.5.29.31']);

/** RFC 5280 §4.2.1.3 KeyUsage bit numbers. */
const KU = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

interface CertProps {
  /** basicConstraints cA; undefined when the extension is absent. */
  readonly ca: boolean | undefined;
  readonly pathLen: number | undefined;
  /** Set key usage bits; undefined when the extension is absent. */
  readonly keyUsage: ReadonlySet<number> | undefined;
  readonly unknownCritical: readonly string[];
}

const propsCache = new WeakMap<X509Certificate, CertProps>();

function fail(msg: string): never {
  throw new BuildtraceError('CERT_INVALID', msg);
}

function certProps(cert: X509Certificate): CertProps {
  const hit = propsCache.get(cert);
  if (hit) return hit;
  let ca: boolean | undefined;
  let pathLen: number | undefined;
  let keyUsage: Set<number> | undefined;
  const unknownCritical: string[] = [];
  for (const e of certificateExtensionList(cert.raw)) {
    if (e.oid === BASIC_CONSTRAINTS) {
      const s = readTlv(e.value, 0);
      if (s.tag !== 0x30 || s.end !== e.value.length) fail('basicConstraints is not a SEQUENCE');
      const f = children(e.value, s);
      ca = false;
      let i = 0;
      if (f[i]?.tag === 0x01) {
        if (f[i]?.value.length !== 1) fail('basicConstraints cA is not a BOOLEAN');
        ca = f[i]?.value[0] !== 0;
        i++;
      }
      if (f[i]?.tag === 0x02) pathLen = decodeInteger((f[i++] as { value: Uint8Array }).value);
      if (i !== f.length) fail('basicConstraints has unexpected fields');
    } else if (e.oid === KEY_USAGE) {
      const b = readTlv(e.value, 0);
      if (b.tag !== 0x03 || b.value.length < 1 || b.end !== e.value.length) fail('keyUsage is not a BIT STRING');
      keyUsage = new Set();
      const bytes = b.value.subarray(1);
      for (let bit = 0; bit < bytes.length * 8; bit++) if (((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) keyUsage.add(bit);
    } else if (e.critical && !UNDERSTOOD.has(e.oid)) unknownCritical.push(e.oid);
  }
  const p = { ca, pathLen, keyUsage, unknownCritical };
  propsCache.set(cert, p);
  return p;
}

/** A CA certificate may sign certificates: cA true and keyCertSign (RFC 5280 §4.2.1.9, §4.2.1.3). */
function caProblem(c: X509Certificate, below: number): string | undefined {
  const p = certProps(c);
  const name = cn(c.subject) ?? c.subject;
  if (p.ca !== true) return `${name} issues certificates but is not a CA (basicConstraints ${p.ca === undefined ? 'absent' : 'cA false'})`;
  if (!p.keyUsage?.has(KU.keyCertSign)) return `${name} issues certificates but its keyUsage ${p.keyUsage ? 'lacks' : 'is absent, so it lacks'} keyCertSign`;
  if (p.pathLen !== undefined && below > p.pathLen) return `${name} allows ${p.pathLen} CA certificate(s) below it (pathLenConstraint), the path has ${below}`;
  return undefined;
}

/** Whether `issuer` may sign CRLs: a CA with cRLSign (RFC 5280 §4.2.1.3, §6.3.3 f). */
function crlIssuerProblem(issuer: X509Certificate): string | undefined {
  const p = certProps(issuer);
  const name = cn(issuer.subject) ?? issuer.subject;
  if (p.ca !== true) return `${name} is not a CA and may not issue CRLs`;
  if (!p.keyUsage?.has(KU.cRLSign)) return `${name} may not sign CRLs (keyUsage lacks cRLSign)`;
  return undefined;
}

/** Certificates from evidence or collateral are hostile input: any OpenSSL error is a failed check. */
function signedBy(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.issuer === issuer.subject && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function selfSigned(c: X509Certificate): boolean {
  return signedBy(c, c);
}

/** What a certificate at one position of a path must be called. */
interface CertRole {
  readonly role: string;
  readonly cn: RegExp;
}

/** The shape of a vendor's path: the roles from the leaf up to (not including) the root, and the root's. */
export interface PathSpec {
  readonly below: readonly CertRole[];
  readonly root: CertRole;
}

type PathVerdict =
  | { readonly ok: true; readonly detail: string; readonly certs: readonly X509Certificate[]; readonly pinned: PinnedCert }
  | { readonly ok: false; readonly detail: string; readonly pinned?: PinnedCert };

/**
 * Validates `chain` (leaf first; the root may be left out) against the pinned roots: the path
 * is completed with pinned certificates only, must end at a pinned self-signed root, must have
 * exactly the shape of `spec`, and every certificate must hold its role.
 */
export function validatePath(
  chain: readonly X509Certificate[],
  spec: PathSpec,
  roots: readonly PinnedCert[],
  fingerprints: readonly string[] | undefined,
): PathVerdict {
  if (chain.length === 0) return { ok: false, detail: 'no certificates' };
  const want = spec.below.length + 1;
  if (chain.length > want) return { ok: false, detail: `${chain.length} certificates where a ${spec.below[0]?.role} path has ${want}` };
  const path = [...chain];
  const pinnedOf = (c: X509Certificate): PinnedCert | undefined => roots.find((r) => r.cert.raw.equals(c.raw));
  for (let i = 0; i + 1 < path.length; i++) {
    const c = path[i] as X509Certificate;
    const issuer = path[i + 1] as X509Certificate;
    if (!signedBy(c, issuer)) return { ok: false, detail: `${cn(c.subject)} is not signed by ${cn(issuer.subject)}` };
  }
  // Complete the path upwards with pinned certificates (never with ones that came along).
  let top = path[path.length - 1] as X509Certificate;
  while (!(pinnedOf(top) && selfSigned(top)) && path.length < want) {
    const up = roots.find((r) => signedBy(top, r.cert));
    if (!up) break;
    path.push(up.cert);
    top = up.cert;
  }
  const pinned = pinnedOf(top);
  if (!pinned || !selfSigned(top))
    return {
      ok: false,
      detail: `chain ends at ${cn(top.subject)} (sha256 ${certSha256(top).slice(0, 16)}…), which is not a pinned root${pinned ? ' (pinned, but not self-signed)' : ''}`,
    };
  if (fingerprints && !fingerprints.includes(pinned.sha256))
    return { ok: false, detail: `root ${cn(pinned.cert.subject)} is not among the policy's rootFingerprints`, pinned };
  if (path.length !== want)
    return {
      ok: false,
      detail: `${path.map((c) => cn(c.subject)).join(' ← ')}: a ${spec.below[0]?.role} path is ${[...spec.below, spec.root].map((r) => r.role).join(' ← ')}`,
      pinned,
    };
  const roles = [...spec.below, spec.root];
  for (let i = 0; i < path.length; i++) {
    const c = path[i] as X509Certificate;
    const role = roles[i] as CertRole;
    const name = cn(c.subject) ?? '';
    if (!role.cn.test(name)) return { ok: false, detail: `${JSON.stringify(name)} where the ${role.role} belongs`, pinned };
    let problem: string | undefined;
    try {
      const p = certProps(c);
      if (p.unknownCritical.length > 0) problem = `${name} has critical extension(s) ${p.unknownCritical.join(', ')} that this verifier does not understand`;
      else if (i === 0) {
        if (p.ca === true) problem = `${name} is a CA certificate, not an end-entity ${role.role}`;
        else if (p.keyUsage && !p.keyUsage.has(KU.digitalSignature)) problem = `${name}'s keyUsage lacks digitalSignature`;
      } else problem = caProblem(c, i - 1);
    } catch (err) {
      problem = `${name}: ${errorMessage(err)}`;
    }
    if (problem) return { ok: false, detail: problem, pinned };
  }
  return { ok: true, detail: `${path.map((c) => cn(c.subject)).join(' ← ')} (pinned ${pinned.file})`, certs: path, pinned };
}

/** A CA's name and fingerprint: two roots may share a name. */
function named(c: X509Certificate): string {
  return `${cn(c.subject)} (sha256 ${certSha256(c).slice(0, 16)}…)`;
}

/** One certificate and the CA that issued it (adjacent in a validated path). */
interface IssuedCert {
  readonly cert: X509Certificate;
  readonly issuer: X509Certificate;
}

/** The issuer links of a validated path whose issuer satisfies `which` (position from the leaf). */
export function issuedIn(path: readonly X509Certificate[] | undefined, which: (issuerIndex: number, length: number) => boolean): IssuedCert[] {
  const out: IssuedCert[] = [];
  if (!path) return out;
  for (let i = 0; i + 1 < path.length; i++)
    if (which(i + 1, path.length)) out.push({ cert: path[i] as X509Certificate, issuer: path[i + 1] as X509Certificate });
  return out;
}

/**
 * One CRL applied to the certificates it must cover: it is accepted only from the CA that
 * issued every one of them (issuer name, signature, cA and cRLSign: RFC 5280 §6.3.3; Intel QVL
 * PckCrlVerifier), must be current at `at`, and must list none of them. A certificate whose
 * issuer is not the CRL's is reported as not covered, never passed over.
 */
export function revocationStep(step: string, der: Uint8Array, covered: readonly IssuedCert[], at: Date): Step {
  let crl: Crl;
  try {
    crl = parseCrl(der);
  } catch (err) {
    return { step, ok: false, detail: errorMessage(err) };
  }
  if (covered.length === 0) return { step, ok: false, detail: 'no trusted certification path to check the CRL against' };
  const issuers = covered.map((c) => c.issuer).filter((c, i, a) => a.findIndex((x) => x.raw.equals(c.raw)) === i);
  const issuer = issuers.find((c) => crlSignedBy(crl, c));
  if (!issuer) return { step, ok: false, detail: `CRL is not signed by ${issuers.map((c) => cn(c.subject)).join(' or ')}` };
  let why: string | undefined;
  try {
    why = crlIssuerProblem(issuer);
  } catch (err) {
    why = errorMessage(err);
  }
  if (why) return { step, ok: false, detail: why };
  const other = covered.filter((c) => !c.issuer.raw.equals(issuer.raw));
  if (other.length > 0)
    return {
      step,
      ok: false,
      detail: other
        .map((c) => `${cn(c.cert.subject)} was issued by ${named(c.issuer)}, not by this CRL's issuer ${named(issuer)}: its revocation is unchecked`)
        .join('; '),
    };
  if (!crlCurrent(crl, at))
    return {
      step,
      ok: false,
      detail: `CRL issued ${crl.thisUpdate.toISOString()}, next update ${crl.nextUpdate?.toISOString() ?? '-'}: not current at ${at.toISOString()}`,
    };
  const revoked = covered.filter((c) => isRevoked(crl, c.cert));
  return {
    step,
    ok: revoked.length === 0,
    detail:
      revoked.length === 0
        ? `${cn(issuer.subject)} CRL (${crl.revoked.size} revoked) lists none of ${covered.map((c) => cn(c.cert.subject)).join(', ')}`
        : revoked.map((c) => `${cn(c.cert.subject)} serial ${c.cert.serialNumber.toLowerCase()} is revoked`).join('; '),
  };
}
