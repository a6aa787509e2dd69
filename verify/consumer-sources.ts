import { lstatSync } from 'node:fs';
import type { StoreInfo } from '../daemon/store-info.js';
import { type ReadLimits, readLimitsFrom } from '../src/cache/limits.js';
import { BuildtraceError, errorMessage } from '../src/errors.js';
import type Database from 'better-sqlite3';
import type { Derivation } from '../src/nix/derivation.js';
import { parseStorePath } from '../src/nix/store-path.js';
import type { DrvLoader } from '../src/store/drv-loader.js';
import { RealisationDerivations } from '../src/store/realisation-derivations.js';
import type { parseArgs } from '../src/util/args.js';
import type { BundleSource } from '../src/verify/sources.js';
import { LocalStoreFacts, type FactSource } from '../src/verify/store-facts.js';
import { openSources } from '../src/verify/verdict.js';
import type { TargetFacts } from '../src/verify/target.js';

export const DEFAULT_NIX_DB = '/nix/var/nix/db/db.sqlite';

/**
 * What a consumer command reads (trace-verify TARGET, trace-verify measure IMAGE): bundles from
 * --cache and --db, and the last mile's facts from the caches' narinfo and the local Nix database.
 */
export async function openConsumerSources(a: ReturnType<typeof parseArgs>): Promise<{
  sources: BundleSource[];
  facts: FactSource[];
  notes: string[];
  store: { close(): void } | undefined;
  limits: ReadLimits;
}> {
  const limits = readLimitsFrom((f) => a.values.get(f));
  const { sources, facts } = await openSources(a.lists.get('cache') ?? [], a.lists.get('db') ?? [], limits);
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
  return { sources, facts, notes, store, limits };
}

/**
 * The door's view of the store: Nix's records (database, else the CLI), the .drv files
 * themselves, and Nix's realisations (database only: the CLI cannot list them by output path).
 */
export function storeTargetFacts(loader: DrvLoader, nixDb: string): TargetFacts & { close(): void } {
  let info: StoreInfo | undefined;
  let realised: { db: Database.Database; by: RealisationDerivations } | null | undefined;
  const derivation = (p: string): Derivation | undefined => (lstatSync(p, { throwIfNoEntry: false }) === undefined ? undefined : loader.drv(p));
  return {
    pathInfos: async (paths) => {
      // loaded on demand: most targets are .drv files with input derivations, which need no look-up
      info ??= (await import('../daemon/store-info.js')).openStoreInfo('auto', nixDb);
      return info.pathInfos(paths);
    },
    derivation,
    realisedBy: async (path) => {
      if (realised === undefined) {
        try {
          const Sqlite = (await import('better-sqlite3')).default;
          const db = new Sqlite(nixDb, { readonly: true, fileMustExist: true });
          db.pragma('query_only = 1');
          realised = { db, by: new RealisationDerivations(db, loader.drv) };
        } catch {
          realised = null; // no readable database: no realisations to consult (the refusal says none were found)
        }
      }
      if (realised === null) return [];
      const name = parseStorePath(path).name;
      const out: { drv: string; output: string }[] = [];
      for (const r of realised.by.rowsFor(path)) {
        // the derivation's name, from the output's path name (outputPathName in reverse)
        const drvName = r.output === 'out' ? name : name.endsWith(`-${r.output}`) ? name.slice(0, -r.output.length - 1) : undefined;
        if (drvName === undefined) continue;
        for (const drv of realised.by.candidates(r.hashModulo, drvName))
          if (!out.some((x) => x.drv === drv && x.output === r.output)) out.push({ drv, output: r.output });
      }
      return out;
    },
    close: () => {
      info?.close();
      realised?.db.close();
    },
  };
}
