import { createHash } from 'node:crypto';
import { BuildtraceError, decidedOrThrow, errorMessage, isDecided } from '../errors.js';
import { derivationKind, derivationName, parseOutputHashAlgo, type Derivation } from '../nix/derivation.js';
import { parseHash } from '../nix/hash.js';
import { resolveDerivation, type InputOutputLookup, type Resolution } from '../nix/resolve.js';
import { parseStorePath, printStorePath } from '../nix/store-path.js';
import type { DrvLoader } from '../store/drv-loader.js';
import { checkBundleAsync, type BundleCheck } from '../trace/bundle.js';
import { admitKeys, checkTraceEvidence, type IdentityVerdict } from './admission.js';
import { BundlePool, poolThreshold } from './bundle-pool.js';
import { RunBudget } from './budget.js';
import type { ReadLimits } from '../cache/limits.js';
import { checkClaim, depKey, type DepRef, type Entry, type InputOrigin, type Problem } from './claims.js';
import { type ClosureGraph, markBlocking, Positions } from './positions.js';
import { groupBySignedContent } from './signed-content.js';
import type { BundleSource } from './sources.js';
import type { TrustPolicy } from './trust-policy.js';
import { describeTrust } from './trust-tree.js';
import { decide, disputedPaths, type FodLeaf, type Node, type Settled, type WorldPath } from './world.js';
import { claimFitsTarget, targetProblem, type Target } from './target.js';
import { inputsFirst } from './walk.js';

export type { Problem, ProblemCode } from './claims.js';

/** A chosen entry, as reported: who signed for which resolved derivation (its outputs are in `world`). */
interface ChosenEntry {
  readonly drv: string;
  readonly resolvedDrv: string;
  readonly signer: string;
  readonly where: string;
}

export interface VerifyResult {
  readonly verified: boolean;
  readonly target: string;
  readonly outputs: Record<string, string>;
  readonly derivationsChecked: number;
  readonly signers: string[];
  readonly candidates: number;
  readonly trust: string;
  readonly problems: Problem[];
  readonly keyStatus: Record<string, { admitted: boolean; detail: string }>;
  /** The verified world: every path the chosen claims bind that the trust tree attests, its NAR sha256 and producing udrv (empty unless verified). */
  readonly world: Record<string, WorldPath>;
  /** The claims the verdict rests on (empty unless verified). */
  readonly entries: readonly ChosenEntry[];
  /** Set when the verdict rests on a seed (VerifyOptions.seed): when that seed was made, so a caller can date its reads by it. */
  readonly seededAt?: number;
}

export interface VerifyOptions {
  readonly policy: TrustPolicy;
  readonly sources: readonly BundleSource[];
  readonly loader: DrvLoader;
  readonly requiredOutputs?: readonly string[];
  /** Output name -> the path the consumer asked for, where the .drv does not fix it (Target.paths). */
  readonly requiredPaths?: Target['paths'];
  readonly at?: Date;
  /** Per-run work bounds (maxKeyHints, maxEvidenceChecks); the defaults otherwise. */
  readonly limits?: ReadLimits;
  readonly storeDir?: string;
  /** 'load': derivations read so far (total unknown yet); 'check': derivations checked of all. */
  readonly progress?: (phase: 'load' | 'check', done: number, total?: number) => void;
  /** The content (NAR sha256) the consumer's sources hold for some of these disputed paths (the last mile's view). */
  readonly heldContent?: (paths: readonly string[]) => Promise<ReadonlyMap<string, string>>;
  /** Sees the gathered claims before the verdict (trace-verify plan decides every position from them). */
  readonly onGraph?: (graph: ClosureGraph) => void;
  /**
   * Signature checks kept across runs (serve): a line's check against a set of known keys is
   * a function of the two alone, so a run that meets the same line under the same keys takes
   * the earlier result instead of checking the signature again.
   */
  readonly checkedLines?: CheckedLines;
  /**
   * Resolutions kept across runs (serve), by .drv path: where every input is at the path its
   * .drv declares, the resolution is a function of the .drv path alone (the loader checks each
   * .drv against its path, and the inputs' declared paths are fixed by theirs).
   */
  readonly resolutions?: Map<string, Pick<Resolution, 'drv' | 'path'>>;
  /**
   * Start the signature worker threads only once the walk has shown a closure of at least the
   * pool threshold (serve: most requests are for small closures, and a worker thread costs more
   * to start than checking a few bundles inline).
   */
  readonly poolAfterWalk?: boolean;
  /**
   * What an earlier verdict left (serve: the verdict of another target, seconds ago; see
   * onSeed): this run may start from its settled claims instead of gathering and deciding the
   * closure below them again (world.ts, Settled). Used only under the same policy object, the
   * same known keys, the same sources, the same store and no `at`, less than SEED_MAX_AGE_MS
   * after it was made, and never with onGraph; a seeded run that does not verify is run again
   * in full, whose result is returned (a seed never causes a refusal).
   */
  readonly seed?: VerdictSeed;
  /** Receives the seed a verified, dispute-free verdict leaves (the caller keeps it, or not). */
  readonly onSeed?: (seed: VerdictSeed) => void;
}

/** A seed older than this is never used (serve's default recheck window; serve passes none older than its own window). */
const SEED_MAX_AGE_MS = 10_000;

/** What a verified, dispute-free verdict leaves for a seeded one (VerifyOptions.seed); opaque to callers. */
export interface VerdictSeed {
  readonly settled: Settled;
  readonly policy: TrustPolicy;
  readonly keys: string;
  readonly sources: readonly BundleSource[];
  readonly storeDir: string;
  /** The start of the full run whose claims it carries (a seeded run's seed keeps its own seed's date). */
  readonly madeAt: number;
  readonly keyStatus: VerifyResult['keyStatus'];
}

const sameSources = (a: readonly BundleSource[], b: readonly BundleSource[]): boolean => a.length === b.length && a.every((s, i) => s.name === b[i]?.name);

/** Earlier signature checks, by line and known keys (VerifyOptions.checkedLines); the owner bounds its size. */
export interface CheckedLines {
  get(key: string): BundleCheck | undefined;
  set(key: string, c: BundleCheck): void;
}

/**
 * The whole derivation graph below `root`, children before parents (iterative: closures
 * are deep). `emit` sees each derivation once all of its inputs are loaded; the walk yields
 * to the event loop now and then, so work `emit` starts (cache reads, signature checks on
 * the worker threads) proceeds while the rest of the graph loads.
 */
async function postOrder(
  root: string,
  loader: DrvLoader,
  settled: (p: string) => boolean,
  emit: (p: string) => void,
  progress?: (loaded: number) => void,
): Promise<string[]> {
  const order: string[] = [];
  for (const p of inputsFirst(root, (d) => (settled(d) ? [] : loader.drv(d).inputDrvs.keys()))) {
    order.push(p);
    emit(p);
    if (order.length % 256 === 0) {
      progress?.(order.length);
      await new Promise(setImmediate);
    }
  }
  return order;
}

function fodLeaf(drv: Derivation): FodLeaf {
  const o = drv.outputs.get('out');
  if (!o) throw new BuildtraceError('DERIVATION_INVALID', 'fixed-output derivation without "out"');
  const { method, algo } = parseOutputHashAlgo(o.hashAlgo);
  // A recursive SHA-256 FOD declares its NAR hash; a flat one declares the file's hash only.
  return { path: o.path, sha256: method === 'recursive' && algo === 'sha256' ? Buffer.from(parseHash(o.hash, 'sha256').bytes).toString('hex') : undefined };
}

/** One distinct signed content stored under a resolved derivation, its check under way. */
interface Lookup {
  readonly where: string;
  readonly variants: number;
  readonly check: Promise<BundleCheck>;
  /** The check's result once it is in (read without a round through the microtask queue). */
  result?: BundleCheck;
}

/** One way to resolve a dependency: the paths of the outputs used, and what is known of their contents. */
interface DepOption {
  readonly key: string;
  readonly paths: ReadonlyMap<string, string>;
  /** path -> NAR hashes its producer's claims (or the FOD's declaration) give it. */
  readonly hashes: ReadonlyMap<string, Set<string>>;
  readonly signers: ReadonlySet<string>;
}

/** Prefetched lookups in flight (see pumpPrefetch). */
const PREFETCH_WINDOW = 1024;

const byStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A dependency's distinct resolutions for the outputs `outs`, grouped by paths (not by bundle), in path order. */
function depOptions(n: Node, outs: readonly string[]): DepOption[] {
  if (n.fod) {
    const paths = new Map([['out', n.fod.path]]);
    return [
      {
        key: depKey(new Map([['out', { path: n.fod.path, sha256: n.fod.sha256 }]]), outs),
        paths,
        hashes: new Map([[n.fod.path, new Set(n.fod.sha256 ? [n.fod.sha256] : [])]]),
        signers: new Set(),
      },
    ];
  }
  const byKey = new Map<string, { key: string; paths: Map<string, string>; hashes: Map<string, Set<string>>; signers: Set<string> }>();
  for (const e of n.entries) {
    if (!outs.every((o) => e.outputs.has(o))) continue;
    const key = depKey(e.outputs, outs);
    let o = byKey.get(key);
    if (!o) {
      o = { key, paths: new Map(outs.map((x) => [x, (e.outputs.get(x) as { path: string }).path])), hashes: new Map(), signers: new Set() };
      byKey.set(key, o);
    }
    o.signers.add(e.signer);
    for (const x of outs) {
      const v = e.outputs.get(x) as { path: string; sha256: string };
      const hs = o.hashes.get(v.path) ?? new Set<string>();
      hs.add(v.sha256);
      o.hashes.set(v.path, hs);
    }
  }
  return [...byKey.values()].sort((a, b) => byStr(a.key, b.key));
}

/**
 * The combinations of dependency options to try, at most `max`: first each signer's own view
 * (the option it signed at every dependency, where that is one), then all combinations in
 * path order. Neither depends on the order bundles were read in.
 */
function combinations(deps: readonly DepOption[][], max: number): { combos: number[][]; total: number } {
  let total = 1;
  for (const d of deps) total = Math.min(total * d.length, Number.MAX_SAFE_INTEGER);
  const combos: number[][] = [];
  const seen = new Set<string>();
  const add = (c: number[]): void => {
    const k = c.join(',');
    if (combos.length >= max || seen.has(k)) return;
    seen.add(k);
    combos.push(c);
  };
  const signers = new Set<string>();
  for (const d of deps) for (const o of d) for (const s of o.signers) signers.add(s);
  for (const s of [...signers].sort(byStr)) {
    add(
      deps.map((d) => {
        const mine = d.flatMap((o, i) => (o.signers.has(s) ? [i] : []));
        return mine.length === 1 ? (mine[0] as number) : 0;
      }),
    );
  }
  for (let n = 0; n < total && combos.length < max; n++) {
    let rest = n;
    add(
      deps.map((d) => {
        const i = rest % d.length;
        rest = Math.floor(rest / d.length);
        return i;
      }),
    );
  }
  return { combos, total };
}

export async function verifyClosure(target: string, opts: VerifyOptions): Promise<VerifyResult> {
  const s = opts.seed;
  const usable =
    s &&
    s.policy === opts.policy &&
    s.storeDir === (opts.storeDir ?? '/nix/store') &&
    sameSources(s.sources, opts.sources) &&
    opts.at === undefined &&
    opts.onGraph === undefined &&
    Date.now() - s.madeAt < SEED_MAX_AGE_MS;
  if (usable) {
    const r = await verifyOnce(target, opts, s);
    if (r?.verified) return { ...r, seededAt: s.madeAt };
  }
  return (await verifyOnce(target, opts, undefined)) as VerifyResult;
}

/** One verdict; seeded, undefined unless it verifies. */
async function verifyOnce(target: string, opts: VerifyOptions, seed: VerdictSeed | undefined): Promise<VerifyResult | undefined> {
  const { policy, loader } = opts;
  const storeDir = opts.storeDir ?? '/nix/store';
  const problems: Problem[] = [];
  // the seed this run leaves is dated by the reads it rests on: a full run's by its start (a
  // caller whose sources hand out older reads bounds their age itself), a seeded run's by its
  // own seed's date, as it carries that seed's claims (a chain of seeds never makes an old read
  // look new)
  const startedAt = Date.now();

  const budget = new RunBudget(opts.limits);
  const admission = await admitKeys(policy, opts.sources, { budget, ...(opts.at ? { at: opts.at } : {}) });
  const keyStatus = admission.keyStatus; // measured identities add to it as they admit keys
  const allKeys = admission.knownKeys;
  // every hint form a known key may carry (grouping puts variants with these hints first)
  const knownFps = new Set(allKeys.flatMap((k) => [k.fingerprint, k.sshFingerprint]));
  const keysNow = allKeys
    .map((k) => k.fingerprint)
    .sort()
    .join(' ');
  if (seed && seed.keys !== keysNow) return undefined;
  // settled by the seed: a boundary of this run (its claims are the seed's; nothing below it is walked)
  const settledAt = (p: string): boolean => p !== target && seed?.settled.live.has(p) === true;

  // start the workers now: their start-up overlaps reading the derivation graph; they pay off
  // once there are many bundles to check (BUILDTRACE_POOL=always|never: tests run both ways)
  const poolMin = poolThreshold() ?? Number.POSITIVE_INFINITY;
  const bytesFor = new Set([...policy.keys.values()].filter((k) => k.tee?.requirePerTraceEvidence).map((k) => k.key.fingerprint));
  const poolWanted = opts.sources.length > 0 && poolMin !== Number.POSITIVE_INFINITY;
  let pool: BundlePool | undefined = poolWanted && !opts.poolAfterWalk ? new BundlePool(allKeys, undefined, bytesFor) : undefined;
  let lazyPool = false;
  const checkFresh = (line: string): Promise<BundleCheck> => {
    if (!pool && lazyPool) pool = new BundlePool(allKeys, undefined, bytesFor);
    return pool ? pool.check(line) : checkBundleAsync(line, allKeys);
  };
  const memo = opts.checkedLines;
  // the keys a check depends on: each known key, and whether its statement bytes are kept (per-trace TEE evidence)
  const keysId = memo
    ? createHash('sha256')
        .update(JSON.stringify([allKeys.map((k) => `${k.name}:${k.fingerprint}`).sort(), [...bytesFor].sort()]))
        .digest('hex')
    : '';
  const checkKnown = async (line: string): Promise<BundleCheck> => {
    if (!memo) return checkFresh(line);
    const key = `${keysId}:${createHash('sha256').update(line).digest('hex')}`;
    const had = memo.get(key);
    if (had) return had;
    const c = await checkFresh(line);
    memo.set(key, c);
    return c;
  };
  // a key the policy does not name may still be admitted by a measured identity (its hint finds its attestation)
  const checkOne = async (line: string): Promise<BundleCheck> => {
    const c = await checkKnown(line);
    if (c.ok || c.reason !== 'key-not-admitted') return c;
    const more = await admission.keysForBundle(line);
    if (more.keys.length > 0) return checkBundleAsync(line, more.keys);
    return more.why.length > 0 ? { ok: false, reason: 'key-not-admitted', detail: more.why.join(' | ') } : c;
  };

  // Every source's bundles for a resolved derivation, read once and grouped by signed content
  // before any signature check (replays with other hints cost one check); within a group the
  // variants are tried in turn until one passes, at most one per known key and one more from
  // each source (so copies from one cache never crowd out another's line).
  const lookups = new Map<string, Promise<Lookup[]>>();
  const lookupsDone = new Map<string, Lookup[]>();
  const lookup = (h: string): Promise<Lookup[]> => {
    let l = lookups.get(h);
    if (!l) {
      l = (async () => {
        const from = new Map<string, string>();
        for (const src of opts.sources) for (const line of await src.bundles(h)) if (!from.has(line)) from.set(line, src.name);
        const out: Lookup[] = [];
        // one line needs no grouping (the common case: one builder's trace)
        const groups = from.size === 1 ? [[...from.keys()]] : groupBySignedContent(from, knownFps, allKeys.length + 1);
        for (const variants of groups) {
          const check = (async (): Promise<BundleCheck> => {
            let first: BundleCheck | undefined;
            for (const v of variants) {
              const c = await checkOne(v);
              if (c.ok) return c;
              first ??= c;
            }
            return first as BundleCheck;
          })();
          const one: Lookup = { where: from.get(variants[0] as string) as string, variants: variants.length, check };
          // a prefetched check nobody awaits (its derivation failed earlier) must not crash the run
          check.then((c) => (one.result = c)).catch(() => undefined);
          out.push(one);
        }
        return out;
      })();
      l.then((v) => lookupsDone.set(h, v)).catch(() => undefined);
      lookups.set(h, l);
    }
    return l;
  };

  // a derivation without input derivations is its own resolution
  const resolutionOf = (p: string, drv: Derivation, path: InputOutputLookup): Pick<Resolution, 'drv' | 'path'> =>
    drv.inputDrvs.size === 0 ? { drv, path: parseStorePath(p, storeDir) } : resolveDerivation(drv, path, storeDir);
  // an input's output path as its .drv declares it (none for content-addressed outputs)
  const declared = (d: string, o: string): string | undefined => loader.drv(d).outputs.get(o)?.path || undefined;

  // The resolution a derivation has when all its inputs have fixed output paths (input-
  // addressed and fixed-output inputs): known as soon as its inputs are loaded, so its
  // bundles can be fetched and checked while the rest of the graph loads.
  const staticResolution = new Map<string, Pick<Resolution, 'drv' | 'path'>>();
  const emitted: string[] = [];
  let prefetching = false;
  // At most PREFETCH_WINDOW lookups read and under check at once: the walk outpaces the
  // signature checks, and lines and promises queued by the thousand outlive young-generation
  // collections (copied twice, then dropped). A hash waits here instead, as a short string.
  const prefetchQueue: string[] = [];
  let prefetchNext = 0;
  let prefetchInFlight = 0;
  const pumpPrefetch = (): void => {
    while (prefetchInFlight < PREFETCH_WINDOW && prefetchNext < prefetchQueue.length) {
      const h = prefetchQueue[prefetchNext++] as string;
      prefetchInFlight++;
      void lookup(h)
        .then((found) => Promise.all(found.map((f) => f.check)))
        .catch(() => undefined)
        .finally(() => {
          prefetchInFlight--;
          pumpPrefetch();
        });
    }
  };
  const prefetch = (p: string): void => {
    const r = staticResolution.get(p);
    if (!r) return;
    prefetchQueue.push(r.path.hashPart);
    pumpPrefetch();
  };
  const onLoaded = (p: string): void => {
    if (settledAt(p)) return;
    const drv = loader.drv(p);
    if (derivationKind(drv, p) === 'fixed') return;
    for (const [d, outs] of drv.inputDrvs) for (const o of outs) if (declared(d, o) === undefined) return;
    try {
      const kept = opts.resolutions?.get(p);
      const r = kept ?? resolutionOf(p, drv, declared);
      if (!kept) opts.resolutions?.set(p, r);
      staticResolution.set(p, r);
    } catch (err) {
      decidedOrThrow(err);
      return; // processNode meets the same error and reports it
    }
    if (!pool) return;
    if (prefetching) prefetch(p);
    else {
      emitted.push(p);
      if (emitted.length >= poolMin) {
        prefetching = true;
        for (const q of emitted.splice(0)) prefetch(q);
      }
    }
  };

  const nodes = new Map<string, Node>();
  const identities = new Map<string, IdentityVerdict>();
  // Gathering: every checked claim of every derivation, for every plausible resolution.
  const optionsMemo = new Map<string, DepOption[]>();
  const processNode = async (p: string): Promise<void> => {
    const drv = loader.drv(p);
    const name = derivationName(drv, p);
    if (derivationKind(drv, p) === 'fixed') {
      nodes.set(p, { drv: p, fod: fodLeaf(drv), entries: [] });
      return;
    }
    if (settledAt(p)) {
      nodes.set(p, { drv: p, entries: seed?.settled.live.get(p) ?? [] });
      return;
    }
    const entries: Entry[] = [];
    const deps: { drv: string; outs: readonly string[]; options: DepOption[]; contentAddressed: boolean; fod: boolean }[] = [];
    for (const [d, outs] of drv.inputDrvs) {
      const n = nodes.get(d) as Node;
      // one grouping per (dependency, outputs used): a dependency like stdenv has thousands of users
      const memoKey = `${d}\0${outs.join(',')}`;
      let options = optionsMemo.get(memoKey);
      if (!options) {
        options = depOptions(n, outs);
        optionsMemo.set(memoKey, options);
      }
      if (options.length === 0) {
        problems.push({ drv: p, code: 'dependency-unsupported', detail: `input ${d} has no verified resolution` });
        nodes.set(p, { drv: p, entries });
        return;
      }
      deps.push({ drv: d, outs, options, contentAddressed: derivationKind(loader.drv(d), d) === 'floating', fod: n.fod !== undefined });
    }
    // most derivations of a closure have one resolution: skip the enumeration for them
    const { combos, total } = deps.every((d) => d.options.length === 1)
      ? { combos: [deps.map(() => 0)], total: 1 }
      : combinations(
          deps.map((d) => d.options),
          policy.maxResolutions,
        );
    if (total > combos.length) {
      problems.push({
        drv: p,
        code: 'bound-hit',
        detail: `${total} combinations of input resolutions; ${combos.length} were tried (each signer's own, then in path order; raise maxResolutions)`,
      });
    }
    for (const combo of combos) {
      const chosen = new Map<string, DepOption>(deps.map((d, i) => [d.drv, d.options[combo[i] as number] as DepOption]));
      // chosen inputs at their declared paths give the resolution already computed
      const st = staticResolution.get(p);
      const res =
        st && deps.every((d) => d.outs.every((o) => (chosen.get(d.drv) as DepOption).paths.get(o) === declared(d.drv, o)))
          ? st
          : resolutionOf(p, drv, (d, o) => chosen.get(d)?.paths.get(o));
      const rdrvPath = printStorePath(res.path);
      const h = res.path.hashPart;
      // where every input path of the rdrv comes from
      const inputOrigins = new Map<string, InputOrigin>();
      for (const src of res.drv.inputSrcs) inputOrigins.set(src, { kind: 'source' });
      for (const d of deps) {
        const o = chosen.get(d.drv) as DepOption;
        for (const path of o.paths.values()) {
          const hs = o.hashes.get(path) ?? new Set<string>();
          inputOrigins.set(
            path,
            d.fod ? { kind: 'fod', drv: d.drv, sha256: [...hs][0] } : { kind: 'output', drv: d.drv, contentAddressed: d.contentAddressed, hashes: hs },
          );
        }
      }
      const depRefs: DepRef[] = deps.map((d) => ({ drv: d.drv, key: (chosen.get(d.drv) as DepOption).key }));
      const found = lookupsDone.get(h) ?? (await lookup(h));
      if (found.length === 0) {
        problems.push({
          drv: p,
          code: 'no-bundle',
          resolvedDrv: rdrvPath,
          detail: `no trace for resolved derivation ${rdrvPath} in ${opts.sources.map((s) => s.name).join(', ')}`,
        });
        continue;
      }
      for (const f of found) {
        const { where, variants } = f;
        const c = f.result ?? (await f.check);
        if (!c.ok) {
          problems.push({
            drv: p,
            code: c.reason,
            resolvedDrv: rdrvPath,
            detail: variants > 1 ? `${c.detail} (${variants} variants of one signed content tried)` : c.detail,
            where,
          });
          continue;
        }
        const fp = c.value.key.fingerprint;
        let who = identities.get(fp);
        if (!who) {
          who = await admission.identityFor(fp);
          identities.set(fp, who); // an identity's verdict does not change within a run
        }
        if ('rejected' in who) {
          problems.push({
            drv: p,
            code: who.code,
            resolvedDrv: rdrvPath,
            ...(who.signer !== undefined ? { signer: who.signer } : {}),
            detail: who.rejected,
            where,
          });
          continue;
        }
        const tee = admission.teeRequirementOf(who.identity);
        if (tee?.requirePerTraceEvidence) {
          const te = await checkTraceEvidence(c.value.statementBytes, h, tee, opts.sources, opts.at, budget);
          if (!te.ok) {
            problems.push({
              drv: p,
              code: 'tee-evidence-failed',
              resolvedDrv: rdrvPath,
              signer: who.identity,
              detail: `per-trace evidence: ${te.detail}`,
              where,
            });
            continue;
          }
        }
        const e = checkClaim(
          { udrv: p, name, rdrv: res.drv, rdrvPath, rdrvHash: h, storeDir, inputOrigins, deps: depRefs },
          c.value.statement,
          who.identity,
          where,
        );
        if ('code' in e) problems.push(e);
        else entries.push(e);
      }
    }
    nodes.set(p, { drv: p, entries });
  };

  let order: string[];
  try {
    order = await postOrder(target, loader, settledAt, onLoaded, opts.progress && ((n) => opts.progress?.('load', n)));
  } catch (err) {
    await pool?.close();
    if (!isDecided(err) && !(err instanceof Error && 'syscall' in err)) throw err;
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read the derivation graph of ${target}: ${errorMessage(err)}`, { subject: target });
  }
  // nothing is in flight on the workers unless prefetching began, which needs poolMin derivations
  if (pool && order.length < poolMin) {
    await pool.close();
    pool = undefined;
  }
  // started late (poolAfterWalk): at the first line to check for real, in a closure large enough
  lazyPool = !pool && poolWanted && opts.poolAfterWalk === true && order.length >= poolMin;

  // children first; independent derivations concurrently (bounded), so remote caches are not read one by one
  const level = new Map<string, number>();
  for (const p of order) {
    let l = 0;
    if (!settledAt(p)) for (const d of loader.drv(p).inputDrvs.keys()) l = Math.max(l, (level.get(d) ?? 0) + 1);
    level.set(p, l);
  }
  const byLevel: string[][] = [];
  for (const p of order) {
    const l = level.get(p) as number;
    const at = byLevel[l];
    if (at) at.push(p);
    else byLevel[l] = [p];
  }
  // within a level, keep `conc` derivations in flight (signatures verify in the thread pool)
  const conc = pool || lazyPool ? 512 : 32;
  let done = 0;
  try {
    for (const ps of byLevel) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ps.length) {
          const p = ps[next++] as string;
          await processNode(p);
          if (++done % 256 === 0 || done === order.length) opts.progress?.('check', done, order.length);
        }
      };
      await Promise.all(Array.from({ length: Math.min(conc, ps.length) }, worker));
    }
  } finally {
    // always: live worker threads would keep the process from exiting
    await pool?.close();
  }

  const rootDrv = loader.drv(target);
  const required = opts.requiredOutputs ?? [...rootDrv.outputs.keys()];
  for (const o of required) if (!rootDrv.outputs.has(o)) throw new BuildtraceError('USAGE', `${target} has no output ${JSON.stringify(o)}`);
  // paths claimed with two contents: the world the consumer's sources agree with goes first
  let held: ReadonlyMap<string, string> | undefined;
  if (opts.heldContent) {
    const disputed = disputedPaths([...nodes.values()].map((n) => n.entries));
    if (disputed.size > 0) held = await opts.heldContent([...disputed].sort());
  }
  // a path asked for must be the one the verdict proves: only the target's claims that give it count
  const door: Target = { drv: target, paths: opts.requiredPaths ?? new Map() };
  const targetNode = nodes.get(target) as Node;
  if (door.paths.size > 0 && !targetNode.fod) {
    const fit = targetNode.entries.filter((e) => claimFitsTarget(door, e.outputs));
    if (fit.length < targetNode.entries.length) nodes.set(target, { ...targetNode, entries: fit });
    if (fit.length === 0) problems.push(targetProblem(door, {}) as Problem);
  }
  const graph: ClosureGraph = {
    target,
    order,
    nodes,
    inputsOf: (d) => [...loader.drv(d).inputDrvs.keys()],
    outputsOf: (d) => [...loader.drv(d).outputs.keys()],
  };
  opts.onGraph?.(graph);
  const v = decide({
    target,
    required,
    order,
    nodes,
    trust: policy.trust,
    maxWorlds: policy.maxResolutions,
    ...(held ? { held } : {}),
    ...(seed ? { settled: seed.settled } : {}),
  });
  // seeded, the closure is what the chosen claims reach (a verified target's closure has a chosen claim at each derivation, or is a fixed output in the world)
  const checked = seed
    ? new Set([...v.entries.map((e) => e.udrv), ...Object.values(v.world).flatMap((w) => (w.producerDrv ? [w.producerDrv] : []))]).size
    : order.length;
  const base = {
    target,
    derivationsChecked: checked,
    trust: describeTrust(policy.trust),
    keyStatus: seed ? { ...seed.keyStatus, ...keyStatus } : keyStatus,
    candidates: v.candidates,
  };
  const unproven = v.verified ? targetProblem(door, v.outputs) : undefined;
  if (unproven) problems.push(unproven);
  if (v.verified && !unproven) {
    // in the order the verdict reached them
    const entries = v.entries.map((e) => ({ drv: e.udrv, resolvedDrv: e.rdrvPath, signer: e.signer, where: e.where }));
    const r: VerifyResult = { ...base, verified: true, outputs: v.outputs, signers: v.signers, problems: [], world: v.world, entries };
    if (v.settled)
      opts.onSeed?.({
        settled: v.settled,
        policy,
        keys: keysNow,
        sources: opts.sources,
        storeDir,
        madeAt: seed ? seed.madeAt : startedAt,
        keyStatus: base.keyStatus,
      });
    return r;
  }
  if (seed) return undefined;
  const all = [...v.problems, ...problems];
  if (!all.some((x) => x.drv === target)) all.push({ drv: target, code: 'no-bundle', detail: 'the target has no signed claim from an admitted key' });
  // name only what blocks: a problem at a derivation that verifies anyway, or above a lower failure, is a note
  const blocking = markBlocking(all, new Positions(graph, policy.trust, policy.maxResolutions), (d) => nodes.has(d));
  return { ...base, verified: false, outputs: {}, signers: [], problems: blocking, world: {}, entries: [] };
}
