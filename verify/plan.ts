import { existsSync, writeFileSync } from 'node:fs';
import { LIMIT_FLAGS, readLimitsFrom } from '../src/cache/limits.js';
import { openCache } from '../src/cache/open.js';
import { BuildtraceError, EXIT_OK, EXIT_REJECTED } from '../src/errors.js';
import { derivationKind, derivationName } from '../src/nix/derivation.js';
import { renderPlanHtml } from '../src/plan/html.js';
import { type IdentityInfo, makePlan, type Plan, type PolicySide } from '../src/plan/plan.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { parseArgs } from '../src/util/args.js';
import { verifyClosure } from '../src/verify/closure.js';
import { type ClosureGraph, Positions } from '../src/verify/positions.js';
import { type BundleSource, CacheSource, DbSource } from '../src/verify/sources.js';
import { describeTrust, loadTrustPolicy, type TrustPolicy } from '../src/verify/trust-policy.js';
import { evaluateOne } from './evaluate.js';

export const PLAN_HELP = `  trace-verify plan TARGET --policy CURRENT --to NEXT (--cache URL | --db FILE)... [--json] [--html FILE]
      what changing the trust policy from CURRENT to NEXT costs. Every derivation of TARGET's
      closure is decided as its own target under both policies (the verifier's one code path):
      verified under both, only the current, only the next, or neither. The rebuild set: the
      lowest derivations that fail under NEXT, each with what blocks it (which identity's absence
      leaves which threshold unmet there); above them, what verifies again without a rebuild if
      the rebuilds reproduce today's outputs ("saved": content-addressed consumers keep their
      resolved derivation, input-addressed ones the input's NAR hash), and what must be rebuilt
      anyway (its own signers fall short, or a rebuild already traced other content). Prints the
      .drv list and the nix-store / nix-build command lines for a builder NEXT admits; once those
      traces are published, the same plan has nothing left. TARGET: a .drv, or a .nix file with
      --attr. --html FILE: one self-contained page (graph coloured per policy, rebuild set
      highlighted, search, list view). Exit 0 when TARGET verifies under NEXT, 1 when not.`;

/** A trust policy's identities with their standing in one run (key status from admission). */
function identitiesOf(policy: TrustPolicy, keyStatus: Record<string, { admitted: boolean; detail: string }>): IdentityInfo[] {
  const out: IdentityInfo[] = [];
  for (const k of policy.keys.values()) {
    const s = keyStatus[k.name];
    out.push({ name: k.name, fingerprint: k.key.fingerprint, counts: s?.admitted === true, why: s?.detail ?? 'not admitted' });
  }
  for (const m of policy.measured.values()) out.push({ name: m.name, counts: true, why: keyStatus[m.name]?.detail ?? 'TEE identity' });
  return out;
}

async function decidePolicy(drv: string, file: string, sources: readonly BundleSource[], loader: DrvLoader): Promise<PolicySide> {
  const policy = loadTrustPolicy(file);
  let graph: ClosureGraph | undefined;
  const r = await verifyClosure(drv, { policy, sources, loader, onGraph: (g) => (graph = g) });
  if (!graph) throw new BuildtraceError('INTERNAL', 'the verifier gathered no graph');
  return {
    file,
    graph,
    at: new Positions(graph, policy.trust, policy.maxResolutions),
    trust: policy.trust,
    trustText: describeTrust(policy.trust),
    maxWorlds: policy.maxResolutions,
    identities: identitiesOf(policy, r.keyStatus),
  };
}

function printPlan(p: Plan): void {
  const lines: string[] = [];
  const verdict = (v: boolean): string => (v ? 'VERIFIED' : 'NOT VERIFIED');
  lines.push(`PLAN ${p.target}`);
  lines.push(`  current ${p.current.policy} (${p.current.trust}): ${verdict(p.current.verified)}`);
  lines.push(`  next    ${p.next.policy} (${p.next.trust}): ${verdict(p.next.verified)}`);
  const c = p.counts;
  lines.push(
    `  ${c.derivations} derivations: ${c.stillVerified} still verified, ${c.lost} lost, ${c.gained} gained, ${c.failingBoth} failing under both; ${c.toRebuild} to rebuild, ${c.savedIfReproducible} saved if the rebuilds reproduce`,
  );
  for (const a of p.notCounting) lines.push(`  under the next policy ${a.identity} does not count: ${a.why}`);
  if (p.rebuild.length === 0) {
    lines.push(p.next.verified ? '  nothing to rebuild' : '  nothing to rebuild, yet the target does not verify under the next policy');
  } else {
    lines.push('rebuild (lowest first):');
    for (const r of p.rebuild) {
      const absent = r.absent.length > 0 ? `; missing: ${r.absent.map((a) => `${a.identity} (${a.why})`).join(', ')}` : '';
      lines.push(`  [${r.level}] ${r.name} ${r.drv} (${r.kindOfDrv}): ${r.kind}: ${r.detail}${absent}`);
      if (r.notReproduced) lines.push(`      did not reproduce: was ${r.notReproduced.was}; now ${r.notReproduced.now}`);
    }
    const saved = p.derivations.filter((d) => d.action === 'saved');
    if (saved.length > 0) {
      lines.push('saved if the rebuilds reproduce (no rebuild needed):');
      for (const d of saved.slice(0, 50)) lines.push(`  ${d.name} ${d.drv} (${d.kind}), waits for ${(d.blockedBy ?? []).length} rebuild(s) below`);
      if (saved.length > 50) lines.push(`  … ${saved.length - 50} more (--json lists all)`);
    }
    lines.push('on a builder the next policy admits (post-build-hook and trace-daemon running):');
    for (const l of p.commands.nixStore) lines.push(`  ${l}`);
    lines.push('  (or: nix-build --no-out-link --check …; --check rebuilds outputs already present and fails when a rebuild does not reproduce)');
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function planCommand(rest: string[]): Promise<number> {
  const a = parseArgs(rest, { booleans: ['json'], strings: ['policy', 'to', 'attr', 'html', ...LIMIT_FLAGS], repeated: ['cache', 'db'] });
  if (a.flags.has('help')) {
    process.stdout.write(`${PLAN_HELP}\n`);
    return EXIT_OK;
  }
  const [target, ...extra] = a.positionals;
  if (target === undefined) throw new BuildtraceError('USAGE', 'plan needs a TARGET (.drv or .nix file)');
  if (extra.length > 0) throw new BuildtraceError('USAGE', `unexpected argument ${extra[0]}`);
  const currentFile = a.values.get('policy');
  const nextFile = a.values.get('to');
  if (!currentFile || !nextFile) throw new BuildtraceError('USAGE', 'plan needs --policy CURRENT and --to NEXT');
  const limits = readLimitsFrom((f) => a.values.get(f));
  const sources: BundleSource[] = [];
  for (const u of a.lists.get('cache') ?? []) sources.push(new CacheSource(await openCache(u, { limits }), { limits }));
  for (const f of a.lists.get('db') ?? []) sources.push(new DbSource(f, limits));
  if (sources.length === 0) throw new BuildtraceError('USAGE', 'give at least one --cache URL or --db FILE');
  let drv: string;
  if (/^\/nix\/store\/[^/]+\.drv$/.test(target)) drv = target;
  else if (existsSync(target)) drv = await evaluateOne(target, a.values.get('attr'));
  else throw new BuildtraceError('USAGE', `${JSON.stringify(target)} is not a .drv path or a .nix file`);
  // both policies' files load before any work: a broken NEXT is a usage error, not a verdict
  loadTrustPolicy(currentFile);
  loadTrustPolicy(nextFile);
  const loader = new DrvLoader('/nix/store', Number.POSITIVE_INFINITY);
  const current = await decidePolicy(drv, currentFile, sources, loader);
  const next = await decidePolicy(drv, nextFile, sources, loader);
  const plan = makePlan({
    target: drv,
    current,
    next,
    nameOf: (d) => derivationName(loader.drv(d), d),
    kindOf: (d) => {
      const k = derivationKind(loader.drv(d), d);
      return k === 'fixed' ? 'fixed' : k === 'floating' ? 'ca' : 'ia';
    },
  });
  const html = a.values.get('html');
  if (html !== undefined) writeFileSync(html, renderPlanHtml(plan));
  if (a.flags.has('json')) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
  else printPlan(plan);
  return plan.next.verified ? EXIT_OK : EXIT_REJECTED;
}
