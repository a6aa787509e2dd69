import { execFile } from 'node:child_process';
import { BuildtraceError } from '../src/errors.js';

/** A .nix file (with an attribute) evaluated to the one .drv it names. */
export async function evaluateOne(file: string, attr: string | undefined): Promise<string> {
  const args = [file, ...(attr ? ['-A', attr] : [])];
  const out = await new Promise<string>((resolve, reject) =>
    execFile('nix-instantiate', args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new BuildtraceError('USAGE', `nix-instantiate ${args.join(' ')}: ${(stderr || err.message).trim().split('\n').pop() ?? ''}`));
      else resolve(stdout.trim());
    }),
  );
  const drvs = out.split('\n').filter((l) => l.endsWith('.drv'));
  if (drvs.length !== 1) throw new BuildtraceError('USAGE', `${file} evaluates to ${drvs.length} derivations; pick one with --attr`);
  return drvs[0] as string;
}
