import { existsSync } from 'node:fs';
import { BuildtraceError } from '../src/errors.js';
import { targetOfDrv, targetOfPath, type Target, type TargetFacts } from '../src/verify/target.js';
import { evaluateOne } from './evaluate.js';

/**
 * A command line's TARGET -> the unresolved derivation and outputs to verify, through the
 * target's door (src/verify/target.ts): a .nix file is evaluated here; a .drv or an output path
 * must pass the door. trace-verify TARGET and trace-verify plan TARGET both take it here.
 */
export async function resolveTarget(t: string, attr: string | undefined, facts: TargetFacts, outputs: readonly string[] | undefined): Promise<Target> {
  if (t.startsWith('/nix/store/')) {
    if (t.endsWith('.drv')) return targetOfDrv(t, facts, outputs);
    if (outputs) throw new BuildtraceError('USAGE', `--output goes with a .drv or a .nix file; ${t} names its output itself`);
    return targetOfPath(t, facts);
  }
  if (existsSync(t)) return targetOfDrv(await evaluateOne(t, attr), facts, outputs);
  throw new BuildtraceError('USAGE', `${JSON.stringify(t)} is not a .drv path, a store path or a .nix file`);
}
