/**
 * The one verdict trace-verify gives and `trace-verify serve` serves by: the trust verdict
 * over the closure (closure.ts), then the last mile against the consumer's sources
 * (last-mile.ts). Callers only say where the bundles and facts come from.
 */
import { openCache } from '../cache/open.js';
import type { ReadLimits } from '../cache/limits.js';
import type { DrvLoader } from '../store/drv-loader.js';
import { verifyClosure, type CheckedLines, type VerdictSeed, type VerifyOptions, type VerifyResult } from './closure.js';
import { decideLastMile, lastMileProblems, type LastMileReport } from './last-mile.js';
import { CacheSource, DbSource, type BundleSource } from './sources.js';
import { gatherFacts, heldContent, NarInfoFacts, type FactSource } from './store-facts.js';
import type { TrustPolicy } from './trust-policy.js';
import type { Target } from './target.js';
import type { WorldPath } from './world.js';
import type { ClosureGraph } from './positions.js';

export type VerifyOutput = VerifyResult & {
  /** null when the trust verdict already failed (there is no verified world to compare). */
  readonly lastMile: (LastMileReport & { readonly required: boolean; readonly sources: string[]; readonly notes: string[] }) | null;
};

/** The bundle sources and last-mile fact sources for `--cache` URLs and `--db` files. */
export async function openSources(
  cacheUrls: readonly string[],
  dbFiles: readonly string[],
  limits: ReadLimits,
): Promise<{ sources: BundleSource[]; facts: FactSource[]; caches: CacheSource[] }> {
  const sources: BundleSource[] = [];
  const facts: FactSource[] = [];
  const caches: CacheSource[] = [];
  for (const u of cacheUrls) {
    const cache = new CacheSource(await openCache(u, { limits }), { limits });
    sources.push(cache);
    caches.push(cache);
    facts.push(new NarInfoFacts(cache));
  }
  for (const f of dbFiles) sources.push(new DbSource(f, limits));
  return { sources, facts, caches };
}

/**
 * The last mile over verified worlds (each with the outputs whose runtime closure it covers):
 * the sources are asked once about every path of all of them, each world is decided on its own.
 */
export async function lastMileReports(
  verified: readonly { readonly world: Record<string, WorldPath>; readonly outputs: Record<string, string> }[],
  facts: readonly FactSource[],
): Promise<LastMileReport[]> {
  const worlds = verified.map((v) => new Map(Object.entries(v.world)));
  const all = worlds.length === 1 ? (worlds[0] as Map<string, WorldPath>) : new Map(worlds.flatMap((w) => [...w]));
  const answers = await gatherFacts(all, facts);
  return worlds.map((world, i) => decideLastMile(world, Object.values((verified[i] as { outputs: Record<string, string> }).outputs), (p) => answers.get(p)));
}

/** The last mile over a verified result: the sources' view of the world and the runtime closure, decided. */
export async function withLastMile(r: VerifyResult, facts: readonly FactSource[], required: boolean, notes: string[]): Promise<VerifyOutput> {
  if (!r.verified) return { ...r, lastMile: null };
  const [report] = (await lastMileReports([r], facts)) as [LastMileReport];
  const problems = lastMileProblems(report, r.target, required);
  return {
    ...r,
    verified: problems.length === 0,
    problems: [...r.problems, ...problems],
    lastMile: { required, sources: facts.map((f) => f.name), notes, ...report },
  };
}

interface VerdictOptions {
  readonly policy: TrustPolicy;
  readonly sources: readonly BundleSource[];
  readonly facts: readonly FactSource[];
  readonly loader: DrvLoader;
  /** Per-run bounds (closure.ts's RunBudget); the read limits by default. */
  readonly limits?: ReadLimits | undefined;
  readonly requiredOutputs?: readonly string[] | undefined;
  /** Output name -> the path asked for where the .drv does not fix it (target.ts, Target.paths). */
  readonly requiredPaths?: Target['paths'] | undefined;
  readonly at?: Date | undefined;
  readonly progress?: ((phase: 'load' | 'check', done: number, total?: number) => void) | undefined;
  /** Signature checks and static resolutions kept across verdicts (serve). */
  readonly checkedLines?: CheckedLines | undefined;
  readonly resolutions?: VerifyOptions['resolutions'] | undefined;
  readonly poolAfterWalk?: boolean | undefined;
  /** An earlier verdict's seed to start from, and where a new one goes (VerifyOptions.seed, onSeed; serve). */
  readonly seed?: VerdictSeed | undefined;
  readonly onSeed?: ((seed: VerdictSeed) => void) | undefined;
  /** The claims gathered over the closure (trace-verify plan and installed decide each position from it). */
  readonly onGraph?: ((graph: ClosureGraph) => void) | undefined;
  /** --require-last-mile: a runtime path no source knows fails too */
  readonly requireLastMile: boolean;
  /** Notes for the report (a local store that could not be consulted). */
  readonly notes: string[];
}

/** The trust verdict over the closure (no last mile yet); `serve` caches this part. */
export function trustVerdict(drv: string, o: Omit<VerdictOptions, 'requireLastMile' | 'notes'>): Promise<VerifyResult> {
  return verifyClosure(drv, {
    policy: o.policy,
    sources: o.sources,
    loader: o.loader,
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.requiredOutputs ? { requiredOutputs: o.requiredOutputs } : {}),
    ...(o.requiredPaths ? { requiredPaths: o.requiredPaths } : {}),
    ...(o.at ? { at: o.at } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.checkedLines ? { checkedLines: o.checkedLines } : {}),
    ...(o.resolutions ? { resolutions: o.resolutions } : {}),
    ...(o.poolAfterWalk ? { poolAfterWalk: true } : {}),
    ...(o.seed ? { seed: o.seed } : {}),
    ...(o.onSeed ? { onSeed: o.onSeed } : {}),
    ...(o.onGraph ? { onGraph: o.onGraph } : {}),
    ...(o.facts.length > 0 ? { heldContent: (paths: readonly string[]) => heldContent(paths, o.facts) } : {}),
  });
}

/** Trust verdict, then the last mile: what `trace-verify TARGET` prints and `serve` serves by. */
export async function verifyWithLastMile(drv: string, o: VerdictOptions): Promise<VerifyOutput> {
  return withLastMile(await trustVerdict(drv, o), o.facts, o.requireLastMile, o.notes);
}
