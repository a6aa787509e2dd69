import { BuildtraceError } from '../errors.js';
import { derivationName, outputKind, type Derivation } from '../nix/derivation.js';
import { DrvHashCache } from '../nix/hash-modulo.js';
import { makeFixedOutputPath, makeOutputPath, outputPathName, parseStorePath, printStorePath } from '../nix/store-path.js';
import { parseOutputHashAlgo } from '../nix/derivation.js';

/**
 * The target's door (README "Trust semantics"): what a verdict is about. A target is the
 * outputs of the *unresolved* derivation the consumer evaluated. An output path becomes a
 * target only once it is proven to be an output of that derivation: from the .drv for
 * input-addressed and fixed outputs (the declared path, which the .drv's own hash gives), from
 * the verified world for content-addressed and deferred ones (a verified claim for that
 * derivation must give exactly this path). Nix's recorded deriver is a hint only (for a
 * substituted path it is the cache's unauthenticated `Deriver:`), and a resolved .drv never
 * stands in for its unresolved one: it names no input derivations, so the traces of its
 * dependencies would never be asked for.
 */

/** What the door needs to know about the store; every answer is a hint it checks. */
export interface TargetFacts {
  /** Nix's record of the valid paths among `paths` (others are absent): the recorded deriver, if any. */
  pathInfos(paths: readonly string[]): Promise<ReadonlyMap<string, { readonly deriver?: string }>>;
  /** The parsed .drv (read from the store and checked against its own path), or undefined when it is not there. */
  derivation(drvPath: string): Derivation | undefined;
  /** Hashes modulo kept across TargetFacts objects (serve makes one per request); else one memo per TargetFacts object. */
  readonly hashes?: DrvHashCache;
  /**
   * The local derivations Nix's realisations name as producing `path`, with the output (the
   * Realisations rows for it, their hash modulo mapped to .drv files of the path's name). Asked
   * when the recorded deriver is resolved or absent; a hint the door proves like a deriver.
   */
  realisedBy?(path: string): Promise<readonly { readonly drv: string; readonly output: string }[]>;
}

export interface Target {
  /** The unresolved derivation to verify. */
  readonly drv: string;
  /** The output names the verdict must cover; undefined: all of them. */
  readonly outputs?: readonly string[];
  /**
   * Output name -> the path the consumer asked for, where the .drv does not fix it (content-
   * addressed or deferred outputs): only a verified claim that gives exactly this path counts.
   */
  readonly paths: ReadonlyMap<string, string>;
}

/** A verdict that did not prove the requested output path (see targetProblem). */
export type TargetProblemCode = 'target-unproven';

const PASS_INSTEAD =
  'pass the unresolved .drv you evaluated (nix-instantiate FILE -A ATTR, or nix path-info --derivation INSTALLABLE), or the .nix file with --attr';

function refuse(subject: string, why: string): BuildtraceError {
  return new BuildtraceError('TARGET_REFUSED', `${subject}: ${why}; ${PASS_INSTEAD}`, { subject });
}

/**
 * Whether `drv` is a resolved derivation: it has no input derivations, and some of its input
 * sources are outputs of a derivation (Nix recorded a deriver for them). A derivation the
 * consumer evaluated names the derivations of the outputs it uses in inputDrvs.
 */
async function resolvedInputs(drv: Derivation, facts: TargetFacts): Promise<string[]> {
  if (drv.inputDrvs.size > 0 || drv.inputSrcs.length === 0) return [];
  const infos = await facts.pathInfos(drv.inputSrcs);
  return drv.inputSrcs.filter((p) => infos.get(p)?.deriver !== undefined);
}

/** A .drv path as target: refused when it is a resolved derivation (see resolvedInputs) or not in the store. */
export async function targetOfDrv(drvPath: string, facts: TargetFacts, outputs?: readonly string[]): Promise<Target> {
  const drv = facts.derivation(drvPath);
  if (!drv) throw refuse(drvPath, 'this derivation is not in the store');
  const outs = await resolvedInputs(drv, facts);
  if (outs.length > 0) {
    throw refuse(
      drvPath,
      `a resolved derivation (no input derivations; its inputs ${outs.slice(0, 3).join(', ')}${outs.length > 3 ? ' …' : ''} are outputs of other derivations): verifying it would skip their traces`,
    );
  }
  for (const o of outputs ?? []) if (!drv.outputs.has(o)) throw new BuildtraceError('USAGE', `${drvPath} has no output ${JSON.stringify(o)}`);
  return { drv: drvPath, ...(outputs ? { outputs } : {}), paths: new Map() };
}

/**
 * An output path as target: its recorded deriver is the candidate, and the path must be one
 * of its outputs (outputOf). When that deriver is resolved (Nix records the resolved .drv for
 * content-addressed outputs of derivations with inputs) or absent, the unresolved derivations
 * Nix's realisations name for the path are the candidates instead: each must be in the store,
 * unresolved, with a content-addressed or deferred output of the path's name, and `paths` makes
 * the verdict prove the path is that output (a lying row cannot make another path verify).
 * Refused when no candidate remains, the deriver is not in the store, or it lacks this output.
 */
export async function targetOfPath(path: string, facts: TargetFacts, storeDir = '/nix/store'): Promise<Target> {
  const sp = parseStorePath(path, storeDir);
  if (sp.name.endsWith('.drv')) return targetOfDrv(path, facts);
  const deriver = (await facts.pathInfos([path])).get(path)?.deriver;
  let why: string;
  if (deriver === undefined) why = 'Nix knows no deriver for this path (not valid here, or substituted without one)';
  else {
    const drv = facts.derivation(deriver);
    if (!drv) throw refuse(path, `its recorded deriver ${deriver} is not in the store, so it cannot be shown to be this path's derivation`);
    if ((await resolvedInputs(drv, facts)).length === 0) return outputOf(path, sp.name, deriver, drv, facts, storeDir);
    why = `its recorded deriver ${deriver} is a resolved derivation (Nix records those for content-addressed outputs) and names none of its dependencies' derivations`;
  }
  // Nix's realisations name the derivation that was asked for (its hash modulo): a hint, proven as a deriver would be
  for (const c of [...((await facts.realisedBy?.(path)) ?? [])].sort((x, y) => (x.drv < y.drv ? -1 : x.drv > y.drv ? 1 : 0))) {
    const drv = facts.derivation(c.drv);
    if (!drv || (await resolvedInputs(drv, facts)).length > 0) continue;
    const out = drv.outputs.get(c.output);
    if (!out || outputPathName(derivationName(drv, c.drv), c.output) !== sp.name) continue;
    const kind = outputKind(out);
    // an output path the .drv fixes would carry that .drv as its deriver; only unfixed ones are realised
    if (kind === 'floating' || kind === 'deferred') return { drv: c.drv, outputs: [c.output], paths: new Map([[c.output, path]]) };
  }
  throw refuse(path, `${why}, and no unresolved derivation producing it was found in the Nix database's realisations`);
}

/**
 * The path as output of its recorded (unresolved) deriver: declared (and the .drv's own hash
 * gives that path) for input-addressed and fixed outputs, named like one of its outputs for
 * content-addressed and deferred ones (then `paths` makes the verdict prove it).
 */
function outputOf(path: string, pathName: string, deriver: string, drv: Derivation, facts: TargetFacts, storeDir: string): Target {
  const name = derivationName(drv, deriver);
  for (const [o, out] of drv.outputs) {
    if (outputPathName(name, o) !== pathName) continue;
    const kind = outputKind(out);
    if (kind === 'floating' || kind === 'deferred') return { drv: deriver, outputs: [o], paths: new Map([[o, path]]) };
    if (out.path !== path) break;
    // the declared path must be the one the .drv itself gives (its hash modulo; a fixed output's declared hash)
    if (kind === 'fixed') {
      const { method, algo } = parseOutputHashAlgo(out.hashAlgo, `${deriver} output ${o}`);
      const expected =
        method === 'flat' || method === 'recursive' ? printStorePath(makeFixedOutputPath(method, algo, out.hash, pathName, [], storeDir)) : undefined;
      if (expected !== path) throw refuse(path, `${deriver} declares it as output ${o}, but its declared hash gives ${expected ?? 'no path we can compute'}`);
    } else if (kind === 'ia') {
      let h: string;
      try {
        h = (facts.hashes ?? hashesOf(facts, storeDir)).masked(drv).hashes.get(o) as string;
      } catch (err) {
        if (err instanceof MissingInput) throw refuse(path, `input derivation ${err.drv} of ${deriver} is not in the store`);
        throw err;
      }
      const expected = printStorePath(makeOutputPath(o, h, name, storeDir));
      if (expected !== path) throw refuse(path, `${deriver} declares it as output ${o}, but its own hash gives ${expected}`);
    }
    return { drv: deriver, outputs: [o], paths: new Map() };
  }
  throw refuse(path, `it is not an output of ${deriver}, the deriver Nix recorded for it (a hint, e.g. a cache's Deriver: field)`);
}

class MissingInput extends Error {
  constructor(readonly drv: string) {
    super(`${drv} is not in the store`);
  }
}

/**
 * One hash-modulo memo per store view: the door is asked about many paths in a row (trace-verify
 * installed: every path of the runtime closures), whose derivations share most of their inputs.
 */
const hashMemos = new WeakMap<TargetFacts, Map<string, DrvHashCache>>();
function hashesOf(facts: TargetFacts, storeDir: string): DrvHashCache {
  let byDir = hashMemos.get(facts);
  if (!byDir) {
    byDir = new Map();
    hashMemos.set(facts, byDir);
  }
  let c = byDir.get(storeDir);
  if (!c) {
    c = new DrvHashCache((d) => {
      const x = facts.derivation(d);
      if (!x) throw new MissingInput(d);
      return x;
    }, storeDir);
    byDir.set(storeDir, c);
  }
  return c;
}

/** Whether a claim's output map gives every path the target asks for. */
export function claimFitsTarget(target: Target, outputs: ReadonlyMap<string, { readonly path: string }>): boolean {
  for (const [o, p] of target.paths) if (outputs.get(o)?.path !== p) return false;
  return true;
}

/** The problem with a verified result that does not give the requested paths (none when it does). */
export function targetProblem(target: Target, outputs: Readonly<Record<string, string>>): { drv: string; code: TargetProblemCode; detail: string } | undefined {
  for (const [o, p] of target.paths) {
    if (outputs[o] !== p) {
      return {
        drv: target.drv,
        code: 'target-unproven',
        detail: `no verified claim gives ${p} as output ${o} of ${target.drv}${outputs[o] ? ` (the verified output is ${outputs[o]})` : ''}`,
      };
    }
  }
  return undefined;
}
