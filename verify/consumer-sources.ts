import { existsSync } from 'node:fs';
import { openCache } from '../src/cache/open.js';
import { readLimitsFrom } from '../src/cache/limits.js';
import { BuildtraceError, errorMessage } from '../src/errors.js';
import type { parseArgs } from '../src/util/args.js';
import { CacheSource, DbSource, type BundleSource } from '../src/verify/sources.js';
import { LocalStoreFacts, NarInfoFacts, type FactSource } from '../src/verify/store-facts.js';

const DEFAULT_NIX_DB = '/nix/var/nix/db/db.sqlite';

/**
 * What a consumer command reads: bundles from --cache and --db, and the last mile's facts
 * from the caches' narinfo and the local Nix database (trace-verify TARGET and measure IMAGE).
 */
export async function openConsumerSources(
  a: ReturnType<typeof parseArgs>,
): Promise<{ sources: BundleSource[]; facts: FactSource[]; notes: string[]; store: { close(): void } | undefined }> {
  const sources: BundleSource[] = [];
  const limits = readLimitsFrom((f) => a.values.get(f));
  const facts: FactSource[] = [];
  for (const u of a.lists.get('cache') ?? []) {
    const cache = new CacheSource(await openCache(u, { limits }), { limits });
    sources.push(cache);
    facts.push(new NarInfoFacts(cache));
  }
  for (const f of a.lists.get('db') ?? []) sources.push(new DbSource(f, limits));
  if (sources.length === 0) throw new BuildtraceError('USAGE', 'give at least one --cache URL or --db FILE');
  if (a.flags.has('no-local-store') && a.values.has('nix-db')) throw new BuildtraceError('USAGE', 'give --nix-db or --no-local-store, not both');
  const notes: string[] = [];
  let store: { close(): void } | undefined;
  if (!a.flags.has('no-local-store')) {
    const nixDb = a.values.get('nix-db') ?? DEFAULT_NIX_DB;
    try {
      const { NixDbStoreInfo } = await import('../daemon/store-info.js');
      const s = new NixDbStoreInfo(nixDb);
      store = s;
      facts.push(new LocalStoreFacts(s, `local store (${nixDb})`));
    } catch (err) {
      // named explicitly: an error; the default: a consumer without a readable store still verifies against caches
      if (a.values.has('nix-db')) throw err;
      notes.push(`local store not consulted: ${errorMessage(err)}`);
    }
  }
  return { sources, facts, notes, store };
}

export async function resolveTarget(t: string, attr: string | undefined): Promise<string> {
  if (/^\/nix\/store\/[^/]+\.drv$/.test(t)) return t;
  const run = async (cmd: string, args: string[]): Promise<string> => {
    const { execFile } = await import('node:child_process');
    return new Promise((resolve, reject) =>
      execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new BuildtraceError('USAGE', `${cmd} ${args.join(' ')}: ${(stderr || err.message).trim().split('\n').pop() ?? ''}`));
        else resolve(stdout.trim());
      }),
    );
  };
  if (t.startsWith('/nix/store/')) {
    const d = await run('nix-store', ['--query', '--deriver', t]);
    if (!d.endsWith('.drv') || d === 'unknown-deriver') throw new BuildtraceError('USAGE', `${t} has no known deriver; pass its .drv`);
    return d;
  }
  if (existsSync(t)) {
    const out = await run('nix-instantiate', [t, ...(attr ? ['-A', attr] : [])]);
    const drvs = out.split('\n').filter((l) => l.endsWith('.drv'));
    if (drvs.length !== 1) throw new BuildtraceError('USAGE', `${t} evaluates to ${drvs.length} derivations; pick one with --attr`);
    return drvs[0] as string;
  }
  throw new BuildtraceError('USAGE', `${JSON.stringify(t)} is not a .drv path, a store path or a .nix file`);
}
