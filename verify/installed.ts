import { execFile } from 'node:child_process';
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { LIMIT_FLAGS, readLimitsFrom } from '../src/cache/limits.js';
import { BuildtraceError, EXIT_OK, EXIT_REJECTED } from '../src/errors.js';
import { parseHash } from '../src/nix/hash.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { parseArgs } from '../src/util/args.js';
import { verifyClosure } from '../src/verify/closure.js';
import { type TargetFacts, targetOfPath } from '../src/verify/target.js';
import { DEFAULT_NIX_DB, storeTargetFacts } from './consumer-sources.js';
import { type InstalledPath, type InstalledVerdict, judgeInstalled } from '../src/verify/installed.js';
import { type ClosureGraph, Positions } from '../src/verify/positions.js';
import { loadTrustPolicy } from '../src/verify/trust-policy.js';
import { openSources } from '../src/verify/verdict.js';
import type { Verdict } from '../src/verify/world.js';

export const INSTALLED_HELP = `  trace-verify installed --policy FILE [ROOT...] (--cache URL | --db FILE)... [--json]
      re-check what this machine holds under the policy as it is now (say, after revoking a
      key): the runtime closures of the ROOTs (default: /nix/var/nix/profiles/system and
      /run/current-system where they exist), each path through the target's door as for
      trace-verify PATH (its recorded deriver a hint, or for a content-addressed output the
      unresolved derivation Nix's realisations name: the path must be proven an output of that
      unresolved derivation, else it fails as target-refused), the derivation verified against
      the sources' traces as its own target, the path one of its verified outputs with the
      attested NAR hash. Paths that do not verify are
      listed with the reason and the ROOT that holds them (exit 1); paths with neither a
      deriver nor a realisation naming one are listed as unchecked. Exit 0 when nothing fails.`;

const DEFAULT_ROOTS = ['/nix/var/nix/profiles/system', '/run/current-system'];

/** nix-store --query in batches; one output line per path, in order. */
async function queryEach(flag: string, paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < paths.length; i += 500) {
    const batch = paths.slice(i, i + 500);
    const text = await new Promise<string>((resolve, reject) =>
      execFile('nix-store', ['--query', flag, ...batch], { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new BuildtraceError('STORE_QUERY_FAILED', `nix-store --query ${flag}: ${(stderr || err.message).trim().split('\n').pop() ?? ''}`));
        else resolve(stdout);
      }),
    );
    out.push(...text.trim().split('\n'));
  }
  return out;
}

function printInstalled(rs: readonly InstalledVerdict[], roots: readonly string[]): void {
  const failed = rs.filter((r) => r.status === 'failed');
  const unchecked = rs.filter((r) => r.status === 'unchecked');
  const lines = [
    `${failed.length === 0 ? 'VERIFIED' : 'NOT VERIFIED'} ${roots.join(' ')}: ${rs.length} paths, ${rs.length - failed.length - unchecked.length} verified, ${failed.length} failing, ${unchecked.length} unchecked`,
  ];
  for (const r of failed) lines.push(`  FAIL ${r.path} (held by ${r.roots.join(', ')}): ${r.reason}`);
  for (const r of unchecked.slice(0, 20)) lines.push(`  unchecked ${r.path}: ${r.reason}`);
  if (unchecked.length > 20) lines.push(`  … ${unchecked.length - 20} more unchecked (--json lists all)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function installedCommand(rest: string[]): Promise<number> {
  const a = parseArgs(rest, { booleans: ['json'], strings: ['policy', ...LIMIT_FLAGS], repeated: ['cache', 'db'] });
  if (a.flags.has('help')) {
    process.stdout.write(`${INSTALLED_HELP}\n`);
    return EXIT_OK;
  }
  const policyFile = a.values.get('policy');
  if (!policyFile) throw new BuildtraceError('USAGE', 'installed needs --policy FILE');
  const policy = loadTrustPolicy(policyFile);
  const roots = a.positionals.length > 0 ? a.positionals : DEFAULT_ROOTS.filter((r) => existsSync(r));
  if (roots.length === 0) throw new BuildtraceError('USAGE', `no ROOT given, and neither ${DEFAULT_ROOTS.join(' nor ')} exists`);
  const limits = readLimitsFrom((f) => a.values.get(f));
  const { sources } = await openSources(a.lists.get('cache') ?? [], a.lists.get('db') ?? [], limits);
  if (sources.length === 0) throw new BuildtraceError('USAGE', 'give at least one --cache URL or --db FILE');

  // the runtime closure of each root, and which roots hold each path
  const holders = new Map<string, string[]>();
  for (const root of roots) {
    for (const p of await queryEach('--requisites', [root])) {
      const l = holders.get(p);
      if (l) l.push(root);
      else holders.set(p, [root]);
    }
  }
  const paths = [...holders.keys()].sort();
  const hashes = await queryEach('--hash', paths);
  // every path through the target's door, as trace-verify PATH takes it: the recorded deriver is a hint
  const loader = new DrvLoader('/nix/store', Number.POSITIVE_INFINITY);
  const store = storeTargetFacts(loader, DEFAULT_NIX_DB);
  const installed: InstalledPath[] = [];
  try {
    // the door asks about each path on its own: one batched look-up for all of them first
    const known = await store.pathInfos(paths);
    const doorFacts: TargetFacts = {
      pathInfos: (ps) =>
        ps.every((p) => known.has(p)) ? Promise.resolve(new Map(ps.map((p) => [p, known.get(p) as { deriver?: string }]))) : store.pathInfos(ps),
      derivation: store.derivation,
      ...(store.realisedBy ? { realisedBy: store.realisedBy } : {}),
    };
    for (const [i, p] of paths.entries()) {
      // the batched look-up above already holds Nix's recorded deriver (a hint for the door)
      const d = known.get(p)?.deriver;
      const deriver = d?.endsWith('.drv') ? d : undefined;
      let door: InstalledPath['door'];
      if (deriver === undefined) {
        // a CA path substituted without a deriver may still be named by Nix's realisations (the door asks them)
        try {
          door = { target: await targetOfPath(p, doorFacts) };
        } catch (err) {
          if (!(err instanceof BuildtraceError) || err.code !== 'TARGET_REFUSED') throw err;
          door = { unchecked: 'the local Nix database records no deriver, and no realisation names one' };
        }
      } else if (!lstatSync(deriver, { throwIfNoEntry: false })?.isFile()) door = { unchecked: `its deriver ${deriver} is not in the local store` };
      else {
        try {
          door = { target: await targetOfPath(p, doorFacts) };
        } catch (err) {
          if (!(err instanceof BuildtraceError) || err.code !== 'TARGET_REFUSED') throw err;
          door = { refused: err.message };
        }
      }
      installed.push({
        path: p,
        deriver,
        door,
        narSha256: Buffer.from(parseHash(hashes[i] as string, 'sha256').bytes).toString('hex'),
        roots: holders.get(p) as string[],
      });
    }
  } finally {
    store.close();
  }

  // one run per derivation not yet decided: a run decides every derivation of its closure
  const verdicts = new Map<string, Verdict>();
  const doorDrv = (p: InstalledPath): string | undefined => ('target' in p.door ? p.door.target.drv : undefined);
  const wanted = new Set(installed.map(doorDrv).filter((d) => d !== undefined));
  // the roots' own derivations first: their closures cover most of the rest
  const rootPaths = new Set(roots.map((r) => realpathSync(r)));
  const first = new Set(installed.filter((p) => rootPaths.has(p.path)).map(doorDrv));
  for (const d of [...wanted].sort((x, y) => Number(first.has(y)) - Number(first.has(x)))) {
    if (verdicts.has(d)) continue;
    let graph: ClosureGraph | undefined;
    await verifyClosure(d, { policy, sources, loader, onGraph: (g) => (graph = g) });
    if (!graph) throw new BuildtraceError('INTERNAL', 'the verifier gathered no graph');
    const at = new Positions(graph, policy.trust, policy.maxResolutions);
    for (const u of graph.order) if (wanted.has(u) && !verdicts.has(u)) verdicts.set(u, at.at(u));
  }
  const results = installed.map((p) => judgeInstalled(p, (d) => verdicts.get(d)));
  const failed = results.some((r) => r.status === 'failed');
  if (a.flags.has('json')) process.stdout.write(`${JSON.stringify({ verified: !failed, roots, policy: policyFile, paths: results }, null, 2)}\n`);
  else printInstalled(results, roots);
  return failed ? EXIT_REJECTED : EXIT_OK;
}
