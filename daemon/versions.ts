import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const BUILDTRACE_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The builder's Nix flavour and version, as `builder.version` records them. */
export async function builderVersions(nix = 'nix'): Promise<Record<string, string>> {
  const v: Record<string, string> = { buildtrace: BUILDTRACE_VERSION, node: process.versions.node };
  try {
    const { stdout } = await execFileP(nix, ['--version'], { timeout: 10_000 });
    const m = /\((Nix|Lix)\)\s+(\S+)/i.exec(stdout);
    if (m?.[1] && m[2]) {
      v['nixFlavor'] = m[1].toLowerCase();
      v['nixVersion'] = m[2];
    }
  } catch {
    // Not fatal: traces simply do not name the Nix version.
  }
  return v;
}
