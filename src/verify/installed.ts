import { type Target, targetProblem } from './target.js';
import type { Verdict } from './world.js';

/**
 * Re-checking what a machine holds (trace-verify installed): each path of the roots' runtime
 * closures is judged by its deriver's verdict under the policy (the verifier's decide, per
 * position). Pure: the store queries and the runs happen in verify/installed.ts.
 */

export interface InstalledPath {
  readonly path: string;
  /** The deriver the local Nix database records (a hint: the path must be proven its output). */
  readonly deriver: string | undefined;
  /**
   * What the target's door (target.ts) made of the path: the unresolved derivation it is proven
   * an output of; refused (the door's reason: a deriver that does not produce it, a resolved
   * one); or unchecked (no deriver recorded, or its .drv is not here).
   */
  readonly door: { readonly target: Target } | { readonly refused: string } | { readonly unchecked: string };
  /** The NAR sha256 (hex) the local store records. */
  readonly narSha256: string;
  /** The roots (as given) whose runtime closure holds it. */
  readonly roots: readonly string[];
}

type InstalledStatus = 'verified' | 'failed' | 'unchecked';

export interface InstalledVerdict {
  readonly path: string;
  readonly deriver: string | undefined;
  readonly status: InstalledStatus;
  readonly reason: string;
  readonly roots: readonly string[];
}

/**
 * A path verifies when the target's door proves it an output of an unresolved derivation (for
 * content-addressed outputs: the verdict's verified claim must give exactly this path), that
 * derivation verifies as a target of its own, and the local store holds exactly the attested
 * content. A path the door refuses fails: a recorded deriver is a hint (a cache's `Deriver:`),
 * and a resolved one skips its dependencies' traces. A path without a deriver whose .drv is
 * here (sources, paths copied in without one) is unchecked: nothing attests it either way.
 */
export function judgeInstalled(p: InstalledPath, verdictOf: (drv: string) => Verdict | undefined): InstalledVerdict {
  const base = { path: p.path, deriver: p.deriver, roots: p.roots };
  if ('unchecked' in p.door) return { ...base, status: 'unchecked', reason: p.door.unchecked };
  if ('refused' in p.door) return { ...base, status: 'failed', reason: `target-refused: ${p.door.refused}` };
  const { target } = p.door;
  const v = verdictOf(target.drv);
  if (v === undefined) return { ...base, status: 'unchecked', reason: `${target.drv} was not decided` };
  if (!v.verified) {
    const why = v.problems.find((x) => x.blocking !== false) ?? v.problems[0];
    return { ...base, status: 'failed', reason: why ? `${why.drv}: ${why.code}: ${why.detail}` : `${target.drv} does not verify` };
  }
  const unproven = targetProblem(target, v.outputs);
  if (unproven) return { ...base, status: 'failed', reason: `${unproven.code}: ${unproven.detail}` };
  if (!Object.values(v.outputs).includes(p.path)) return { ...base, status: 'failed', reason: `not an output of ${target.drv} in the verified world` };
  const attested = v.world[p.path]?.narSha256;
  if (attested !== undefined && attested !== p.narSha256)
    return { ...base, status: 'failed', reason: `content-mismatch: the local store holds NAR sha256 ${p.narSha256}, the verified claims attest ${attested}` };
  return { ...base, status: 'verified', reason: `signed by ${v.signers.join(', ') || 'its fixed-output hash'}` };
}
