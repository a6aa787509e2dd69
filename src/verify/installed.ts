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
 * A path verifies when its deriver verifies as a target of its own, the path is one of that
 * verdict's outputs (so a recorded deriver cannot vouch for a path it did not produce) and the
 * local store holds exactly the attested content. A path without a deriver whose .drv is here
 * (sources, paths copied in without one) is unchecked: nothing attests it either way.
 */
export function judgeInstalled(p: InstalledPath, verdictOf: (drv: string) => Verdict | undefined): InstalledVerdict {
  const base = { path: p.path, deriver: p.deriver, roots: p.roots };
  if (p.deriver === undefined) return { ...base, status: 'unchecked', reason: 'the local Nix database records no deriver' };
  const v = verdictOf(p.deriver);
  if (v === undefined) return { ...base, status: 'unchecked', reason: `its deriver ${p.deriver} is not in the local store` };
  if (!v.verified) {
    const why = v.problems.find((x) => x.blocking !== false) ?? v.problems[0];
    return { ...base, status: 'failed', reason: why ? `${why.drv}: ${why.code}: ${why.detail}` : `${p.deriver} does not verify` };
  }
  if (!Object.values(v.outputs).includes(p.path))
    return { ...base, status: 'failed', reason: `not an output of its recorded deriver ${p.deriver} in the verified world` };
  const attested = v.world[p.path]?.narSha256;
  if (attested !== undefined && attested !== p.narSha256)
    return { ...base, status: 'failed', reason: `content-mismatch: the local store holds NAR sha256 ${p.narSha256}, the verified claims attest ${attested}` };
  return { ...base, status: 'verified', reason: `signed by ${v.signers.join(', ') || 'its fixed-output hash'}` };
}
