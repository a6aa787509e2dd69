import type { VerifyResult } from './closure.js';
import { decideLastMile, lastMileProblems, type LastMileReport } from './last-mile.js';
import { gatherFacts, type FactSource } from './store-facts.js';

/** trace-verify's verdict: the trust verdict, then the last mile over what it verified. */
export type VerifyOutput = VerifyResult & {
  /** null when the trust verdict already failed (there is no verified world to compare). */
  readonly lastMile: (LastMileReport & { readonly required: boolean; readonly sources: string[]; readonly notes: string[] }) | null;
};

/** The last mile over a verified result: the sources' view of the world and the runtime closure, decided. */
export async function withLastMile(r: VerifyResult, facts: readonly FactSource[], required: boolean, notes: string[]): Promise<VerifyOutput> {
  if (!r.verified) return { ...r, lastMile: null };
  const world = new Map(Object.entries(r.world));
  const roots = Object.values(r.outputs);
  const answers = await gatherFacts(world, facts);
  const report = decideLastMile(world, roots, (p) => answers.get(p));
  const problems = lastMileProblems(report, r.target, required);
  return {
    ...r,
    verified: problems.length === 0,
    problems: [...r.problems, ...problems],
    lastMile: { required, sources: facts.map((f) => f.name), notes, ...report },
  };
}
