/**
 * The last mile: after the trust verdict, the bytes a consumer will install must be exactly
 * the attested ones. Pure decision over what the verified closure attests (the "world") and
 * what the named caches' narinfo files and the local Nix database say about each path;
 * gathering those answers is store-facts.ts's job.
 */
import { decidedOrThrow, errorMessage } from '../errors.js';
import { contentAddressedPath, parseContentAddress } from '../nix/content-address.js';
import { formatHash } from '../nix/hash.js';
import { makeFixedOutputPath, parseStorePath, printStorePath } from '../nix/store-path.js';

/** What the verified closure binds for one store path. */
export interface Attestation {
  /** Lowercase hex SHA-256 of the NAR; absent where nothing binds it (a flat fixed output binds only its file hash). */
  readonly narSha256?: string | undefined;
  readonly narSize?: number | undefined;
  /** The derivation that produces the path; absent for sources (inputSrcs), bound by the claims that consumed them. */
  readonly producerDrv?: string | undefined;
}
export type World = ReadonlyMap<string, Attestation>;

/** What one source (a cache's narinfo, the local store database) says about a store path. */
export interface PathFact {
  readonly path: string;
  /** Lowercase hex SHA-256 of the NAR. */
  readonly narSha256: string;
  readonly narSize: number;
  /** Full store paths; the path itself among them is a self-reference. */
  readonly references: readonly string[];
  readonly ca?: string | undefined;
  /** The cache URL or `local store (<db>)`. */
  readonly where: string;
}

/** Every source's answer for one path: what those that know it say, and why others could not say. */
export interface PathAnswers {
  readonly facts: readonly PathFact[];
  readonly unusable: ReadonlyArray<{ readonly where: string; readonly reason: string }>;
}

interface CheckedPath {
  readonly path: string;
  /** The producing derivation; absent for a source. */
  readonly drv?: string;
  /** The attested NAR sha256 (hex, as the world gives it); absent for a flat fixed output checked by its content address. */
  readonly narSha256?: string;
  /** The content address it was checked by (a flat fixed output). */
  readonly contentAddress?: string;
  readonly against: string[];
  readonly runtime: boolean;
}

interface UncheckedPath {
  readonly path: string;
  /** The producing derivation; absent for a source. */
  readonly drv?: string;
  readonly runtime: boolean;
  readonly reason: string;
}

type MismatchField = 'narHash' | 'narSize' | 'contentAddress' | 'storePath';

interface ContentMismatch {
  readonly path: string;
  /** The producing derivation; absent for a source. */
  readonly drv?: string;
  /** narHash/narSize: the source disagrees with the attestation; contentAddress: the source's `CA` does not give this path or
   * contradicts its own NarHash; storePath: the attested NAR hash, with the references the source lists, gives another path. */
  readonly field: MismatchField;
  readonly attested: string;
  readonly found: string;
  readonly where: string;
  readonly detail: string;
}

interface UnattestedPath {
  readonly path: string;
  /** Attested paths of the runtime closure whose references list it. */
  readonly referrers: string[];
  /** The sources that list those references. */
  readonly where: string[];
}

/** A source that could not answer for a path (malformed or oversized narinfo, cache error): it might serve other bytes. */
interface SourceError {
  readonly path: string;
  /** The producing derivation; absent for a source. */
  readonly drv?: string;
  readonly where: string;
  readonly reason: string;
}

export interface LastMileReport {
  readonly checked: CheckedPath[];
  readonly unchecked: UncheckedPath[];
  readonly mismatches: ContentMismatch[];
  readonly unattested: UnattestedPath[];
  readonly errors: SourceError[];
  /** The target's runtime closure as far as the sources know it, sorted. */
  readonly runtimeClosure: string[];
}

export function narHashText(hex: string): string {
  return formatHash({ algo: 'sha256', bytes: Uint8Array.from(Buffer.from(hex, 'hex')) }, 'nix32');
}

/**
 * The runtime-closure successors of a path: the union of the references every source lists
 * (a source that adds one makes Nix fetch it; one that drops it cannot hide it). Paths the
 * world does not attest are not followed: they already fail the verdict, and following them
 * would let a hostile cache grow the work with invented references.
 */
export function runtimeSuccessors(world: World, path: string, answers: PathAnswers | undefined): string[] {
  if (!world.has(path) || !answers || answers.facts.length === 0) return [];
  // one source (the usual case): its list as is, no set
  if (answers.facts.length === 1) return (answers.facts[0] as PathFact).references.filter((r) => r !== path);
  const out = new Set<string>();
  for (const f of answers.facts) for (const r of f.references) if (r !== path) out.add(r);
  return [...out];
}

function byPath<T extends { path: string }>(xs: T[]): T[] {
  return xs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Decides every path of the world and of the target's runtime closure (from `roots`, the
 * target's verified outputs). `answersOf` gives what the sources said (undefined: not asked).
 */
export function decideLastMile(
  world: World,
  roots: readonly string[],
  answersOf: (path: string) => PathAnswers | undefined,
  storeDir = '/nix/store',
): LastMileReport {
  // runtime closure: iterative, each path once
  const runtime = new Set<string>();
  const unattested = new Map<string, { referrers: Set<string>; where: Set<string> }>();
  const stack = [...roots];
  for (const r of roots) if (!world.has(r)) unattested.set(r, { referrers: new Set(), where: new Set() });
  while (stack.length > 0) {
    const p = stack.pop() as string;
    if (runtime.has(p)) continue;
    runtime.add(p);
    const answers = answersOf(p);
    for (const q of runtimeSuccessors(world, p, answers)) {
      if (!world.has(q)) {
        const u = unattested.get(q) ?? { referrers: new Set<string>(), where: new Set<string>() };
        u.referrers.add(p);
        for (const f of answers?.facts ?? []) if (f.references.includes(q)) u.where.add(f.where);
        unattested.set(q, u);
      }
      if (!runtime.has(q)) stack.push(q);
    }
  }

  const checked: CheckedPath[] = [];
  const unchecked: UncheckedPath[] = [];
  const mismatches: ContentMismatch[] = [];
  const errors: SourceError[] = [];
  for (const [path, att] of world) {
    const isRuntime = runtime.has(path);
    const answers = answersOf(path) ?? { facts: [], unusable: [] };
    const drv = att.producerDrv !== undefined ? { drv: att.producerDrv } : {};
    for (const u of answers.unusable) errors.push({ path, ...drv, where: u.where, reason: u.reason });
    const found = checkPath(path, att, answers.facts, storeDir);
    mismatches.push(...found.mismatches);
    if (found.mismatches.length > 0) continue;
    if (found.against.length > 0) {
      checked.push({
        path,
        ...drv,
        ...(att.narSha256 !== undefined ? { narSha256: att.narSha256 } : {}),
        ...(found.contentAddress !== undefined ? { contentAddress: found.contentAddress } : {}),
        against: found.against,
        runtime: isRuntime,
      });
      continue;
    }
    const why =
      answers.facts.length > 0
        ? found.why
        : answers.unusable.length > 0
          ? 'no source that answered knows it'
          : 'no named cache and not the local store knows it';
    unchecked.push({ path, ...drv, runtime: isRuntime, reason: why });
  }
  return {
    checked: byPath(checked),
    unchecked: byPath(unchecked),
    mismatches: byPath(mismatches),
    unattested: byPath([...unattested].map(([path, u]) => ({ path, referrers: [...u.referrers].sort(), where: [...u.where].sort() }))),
    errors: byPath(errors),
    runtimeClosure: [...runtime].sort(),
  };
}

interface PathCheck {
  readonly mismatches: ContentMismatch[];
  readonly against: string[];
  readonly contentAddress: string | undefined;
  readonly why: string;
}

function checkPath(path: string, att: Attestation, facts: readonly PathFact[], storeDir: string): PathCheck {
  const mismatches: ContentMismatch[] = [];
  const against: string[] = [];
  const drv = att.producerDrv;
  const by = drv !== undefined ? `built by ${drv}` : 'a source';
  const self = parseStorePath(path, storeDir);
  // formatted only for messages: 10,000 Nix32 encodings are a measurable share of a big closure
  const attestedText = (): string => (att.narSha256 !== undefined ? narHashText(att.narSha256) : '');
  let contentAddress: string | undefined;
  let storePathChecked = false;
  const mismatch = (field: MismatchField, attested: string, found: string, where: string, detail: string): void => {
    mismatches.push({ path, ...(drv !== undefined ? { drv } : {}), field, attested, found, where, detail: `${path} (${by}): ${detail}` });
  };
  for (const f of facts) {
    let ok = true;
    if (att.narSha256 !== undefined) {
      if (f.narSha256 !== att.narSha256) {
        mismatch(
          'narHash',
          attestedText(),
          narHashText(f.narSha256),
          f.where,
          `attested NAR hash ${attestedText()}, ${f.where} has NarHash ${narHashText(f.narSha256)}`,
        );
        ok = false;
      } else if (att.narSize !== undefined && f.narSize !== att.narSize) {
        mismatch('narSize', String(att.narSize), String(f.narSize), f.where, `attested NAR size ${att.narSize}, ${f.where} has NarSize ${f.narSize}`);
        ok = false;
      }
    }
    if (f.ca !== undefined) {
      // the source's content address must give this very path, and (recursive SHA-256 without
      // a self-reference) hash exactly the NAR it serves
      let caPath: string | undefined;
      let caOk = true;
      try {
        const ca = parseContentAddress(f.ca);
        caPath = contentAddressedPath(ca, self, f.references);
        if (caPath !== undefined && caPath !== path) {
          mismatch('contentAddress', path, caPath, f.where, `${f.where} gives content address ${f.ca}, which is the store path ${caPath}`);
          caOk = false;
        } else if (ca.method === 'recursive' && ca.hash.algo === 'sha256' && !f.references.includes(path)) {
          const caHex = formatHash(ca.hash, 'base16', false);
          if (caHex !== f.narSha256) {
            mismatch(
              'contentAddress',
              narHashText(f.narSha256),
              f.ca,
              f.where,
              `${f.where} has NarHash ${narHashText(f.narSha256)} but content address ${f.ca}`,
            );
            caOk = false;
          }
        }
      } catch (err) {
        decidedOrThrow(err);
        mismatch(
          'contentAddress',
          path,
          f.ca,
          f.where,
          `${f.where} gives content address ${f.ca}, which no store object with its references can have: ${errorMessage(err)}`,
        );
        caOk = false;
      }
      ok &&= caOk;
      // a flat fixed output: nothing attests its NAR hash, but its path (fixed by the declared
      // hash) equals the one its content address gives, and Nix checks that address on import
      if (caOk && att.narSha256 === undefined && caPath === path) {
        contentAddress = f.ca;
        against.push(`${f.where} (content address)`);
        continue;
      }
    }
    // a fixed output nothing attests by NAR hash (flat, or not recursive SHA-256): a source
    // that knows it must show it is the declared content, by a content address giving this
    // path; one that cannot is serving bytes nothing binds, and Nix would install them
    if (att.narSha256 === undefined && f.ca === undefined) {
      mismatch('contentAddress', path, '(none)', f.where, `${f.where} knows it but gives no content address, so nothing shows it holds the declared content`);
      continue;
    }
    // the attested NAR hash itself must give the path when the path is a recursive SHA-256
    // content address without self-reference (the source supplies the references)
    if (!storePathChecked && att.narSha256 !== undefined && f.ca?.startsWith('fixed:r:sha256:') && !f.references.includes(path)) {
      storePathChecked = true;
      const others = f.references.filter((r) => r !== path);
      const want = printStorePath(makeFixedOutputPath('recursive', 'sha256', att.narSha256, self.name, others, storeDir));
      if (want !== path) {
        mismatch(
          'storePath',
          attestedText(),
          want,
          f.where,
          `the attested NAR hash ${attestedText()} with the references ${f.where} lists is the store path ${want}, not this one`,
        );
        ok = false;
      }
    }
    if (ok && att.narSha256 !== undefined) against.push(f.where);
  }
  // ... and with nothing to compare each source to, the sources are compared with each other:
  // a content address does not fix the NAR (a flat hash leaves out the executable bit)
  if (att.narSha256 === undefined && facts.length > 1) {
    const first = facts[0] as PathFact;
    for (const f of facts.slice(1)) {
      if (f.narSha256 !== first.narSha256 || f.narSize !== first.narSize) {
        mismatch(
          'narHash',
          `${narHashText(first.narSha256)} (${first.where})`,
          narHashText(f.narSha256),
          f.where,
          `nothing attests its NAR hash, and ${first.where} has NarHash ${narHashText(first.narSha256)} (size ${first.narSize}) while ${f.where} has ${narHashText(f.narSha256)} (size ${f.narSize})`,
        );
      }
    }
  }
  const why = att.narSha256 === undefined ? 'nothing attests its NAR hash and no source gives a content address for it' : '';
  return { mismatches, against: mismatches.length > 0 ? [] : against, contentAddress, why };
}

export type LastMileProblemCode = 'content-mismatch' | 'unattested-path' | 'source-unreadable' | 'unchecked-path';

interface LastMileProblem {
  readonly drv: string;
  readonly code: LastMileProblemCode;
  readonly detail: string;
  readonly where?: string;
}

/**
 * What fails the verdict: any mismatch, any runtime-closure path no verified claim attests, any
 * source that could not answer (it may serve other bytes), and, when `requireRuntimeChecked`,
 * any runtime-closure path no source knows. Paths no source knows are otherwise only reported.
 */
export function lastMileProblems(r: LastMileReport, target: string, requireRuntimeChecked: boolean): LastMileProblem[] {
  const out: LastMileProblem[] = [];
  for (const m of r.mismatches) out.push({ drv: m.drv ?? target, code: 'content-mismatch', detail: m.detail, where: m.where });
  for (const u of r.unattested) {
    const by =
      u.referrers.length > 0 ? `referenced by ${u.referrers.join(', ')}${u.where.length > 0 ? ` according to ${u.where.join(', ')}` : ''}` : 'a target output';
    out.push({ drv: target, code: 'unattested-path', detail: `${u.path} is in the runtime closure (${by}) but no verified claim attests its content` });
  }
  for (const e of r.errors) out.push({ drv: e.drv ?? target, code: 'source-unreadable', detail: `${e.path}: ${e.reason}`, where: e.where });
  if (requireRuntimeChecked) {
    for (const u of r.unchecked)
      if (u.runtime)
        out.push({ drv: u.drv ?? target, code: 'unchecked-path', detail: `${u.path} is in the runtime closure and could not be checked: ${u.reason}` });
  }
  return out;
}
