import { writeFileSync } from 'node:fs';
import { LIMIT_FLAGS, type ReadLimits } from '../src/cache/limits.js';
import { BuildtraceError, EXIT_OK, EXIT_REJECTED } from '../src/errors.js';
import { derivationKind, derivationName } from '../src/nix/derivation.js';
import { renderPlanHtml } from '../src/plan/html.js';
import { type IdentityInfo, makePlan, type Plan, type PolicySide } from '../src/plan/plan.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { parseArgs } from '../src/util/args.js';
import type { LastMileReport } from '../src/verify/last-mile.js';
import { type ClosureGraph, Positions } from '../src/verify/positions.js';
import type { BundleSource } from '../src/verify/sources.js';
import type { FactSource } from '../src/verify/store-facts.js';
import type { Target } from '../src/verify/target.js';
import { loadTrustPolicy, type TrustPolicy } from '../src/verify/trust-policy.js';
import { describeTrust } from '../src/verify/trust-tree.js';
import { lastMileReports, verifyWithLastMile, type VerifyOutput } from '../src/verify/verdict.js';
import { DEFAULT_NIX_DB, openConsumerSources, storeTargetFacts } from './consumer-sources.js';
import { resolveTarget } from './target-arg.js';

export const PLAN_HELP = `  trace-verify plan TARGET --policy CURRENT --to NEXT (--cache URL | --db FILE)... [--json] [--html FILE]
               [--nix-db FILE | --no-local-store]
      what changing the trust policy from CURRENT to NEXT costs. Every derivation of TARGET's
      closure is decided as its own target under both policies (the verifier's one code path):
      verified under both, only the current, only the next, or neither. The rebuild set: the
      lowest derivations that fail under NEXT, each with what blocks it (which identity's absence
      leaves which threshold unmet there); above them, what verifies again without a rebuild if
      the rebuilds reproduce today's outputs ("saved": content-addressed consumers keep their
      resolved derivation, input-addressed ones the input's NAR hash), and what must be rebuilt
      anyway (its own signers fall short, or a rebuild already traced other content). Prints the
      .drv list and the nix-store / nix-build command lines for a builder NEXT admits; once those
      traces are published, the same plan has nothing left. TARGET as for trace-verify TARGET
      (an output path proven to be its deriver's, a .drv, or a .nix file with --attr; refused
      the same way). The target's verdict under each policy is trace-verify's, last mile
      included; a derivation verified in trust whose content at a cache or the local store is
      not the attested one is not still verified (content-mismatch). --html FILE: one
      self-contained page (graph coloured per policy, rebuild set highlighted, search, list view). Exit 0 when TARGET verifies under NEXT, 1 when not.`;

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

interface Common {
  readonly sources: readonly BundleSource[];
  readonly facts: readonly FactSource[];
  readonly loader: DrvLoader;
  readonly limits: ReadLimits;
  readonly notes: string[];
}

/** Problem codes of the target's verdict that no position's trust verdict shows. */
const BEYOND_TRUST = new Set(['content-mismatch', 'unattested-path', 'source-unreadable', 'unchecked-path', 'target-unproven']);

/**
 * The derivations verified in trust whose verified world holds content the sources disagree
 * with: the last mile (verdict.ts, trace-verify's own) over the target's world when it verified
 * in trust, else over the highest derivations that did; a mismatching path's producer and every
 * verified derivation above it.
 */
async function contentMismatches(graph: ClosureGraph, at: Positions, r: VerifyOutput, c: Common): Promise<Map<string, string[]>> {
  let tops: string[];
  let reports: LastMileReport[];
  if (r.lastMile) {
    tops = [graph.target];
    reports = [r.lastMile];
  } else {
    const verified = graph.order.filter((d) => at.verified(d));
    const below = new Set(verified.flatMap((d) => graph.inputsOf(d)));
    tops = verified.filter((d) => !below.has(d));
    reports =
      tops.length === 0
        ? []
        : await lastMileReports(
            tops.map((d) => at.at(d)),
            c.facts,
          );
  }
  const out = new Map<string, string[]>();
  reports.forEach((rep, i) => {
    for (const m of rep.mismatches) {
      const d = m.drv ?? (tops[i] as string);
      const l = out.get(d) ?? [];
      const line = `content-mismatch: ${m.detail} [${m.where}]`;
      if (!l.includes(line)) l.push(line);
      out.set(d, l);
    }
  });
  // inputs before their users: a user of a mismatching derivation gets those bytes too
  for (const d of graph.order) {
    if (out.has(d) || !at.verified(d)) continue;
    const bad = graph.inputsOf(d).find((g) => out.has(g));
    if (bad) out.set(d, [`its input ${bad} does not have the attested content`]);
  }
  return out;
}

/** One policy's side: trace-verify's verdict for the target (verdict.ts), and each position decided on the same claims. */
async function decidePolicy(door: Target, file: string, c: Common, lastMilePerPosition: boolean): Promise<PolicySide> {
  const policy = loadTrustPolicy(file);
  let graph: ClosureGraph | undefined;
  const r = await verifyWithLastMile(door.drv, {
    policy,
    sources: c.sources,
    facts: c.facts,
    loader: c.loader,
    limits: c.limits,
    requiredOutputs: door.outputs,
    requiredPaths: door.paths.size > 0 ? door.paths : undefined,
    requireLastMile: false,
    notes: c.notes,
    onGraph: (g) => (graph = g),
  });
  if (!graph) throw new BuildtraceError('INTERNAL', 'the verifier gathered no graph');
  const at = new Positions(graph, policy.trust, policy.maxResolutions);
  return {
    file,
    graph,
    at,
    trust: policy.trust,
    trustText: describeTrust(policy.trust),
    maxWorlds: policy.maxResolutions,
    identities: identitiesOf(policy, r.keyStatus),
    targetVerified: r.verified,
    targetProblems: r.problems.filter((p) => BEYOND_TRUST.has(p.code)).map((p) => ({ drv: p.drv, code: p.code, detail: p.detail })),
    contentMismatch: lastMilePerPosition ? await contentMismatches(graph, at, r, c) : new Map(),
  };
}

function printPlan(p: Plan): void {
  const lines: string[] = [];
  const verdict = (v: boolean): string => (v ? 'VERIFIED' : 'NOT VERIFIED');
  lines.push(`PLAN ${p.target}`);
  lines.push(`  current ${p.current.policy} (${p.current.trust}): ${verdict(p.current.verified)}`);
  for (const x of p.current.targetProblems.slice(0, 10)) lines.push(`    ${x.drv}: ${x.code}: ${x.detail}`);
  lines.push(`  next    ${p.next.policy} (${p.next.trust}): ${verdict(p.next.verified)}`);
  for (const x of p.next.targetProblems.slice(0, 10)) lines.push(`    ${x.drv}: ${x.code}: ${x.detail}`);
  const c = p.counts;
  lines.push(
    `  ${c.derivations} derivations: ${c.stillVerified} still verified, ${c.lost} lost, ${c.gained} gained, ${c.failingBoth} failing under both; ${c.toRebuild} to rebuild, ${c.savedIfReproducible} saved if the rebuilds reproduce`,
  );
  if (c.contentMismatch > 0)
    lines.push(`  ${c.contentMismatch} verified in trust under the next policy, but a cache or the local store holds other content than the attested:`);
  for (const d of p.derivations.filter((x) => x.action === 'content-mismatch').slice(0, 20))
    lines.push(`    ${d.name} ${d.drv}: ${(d.lastMile ?? []).join('; ')}`);
  for (const a of p.notCounting) lines.push(`  under the next policy ${a.identity} does not count: ${a.why}`);
  if (p.rebuild.length === 0) {
    lines.push(p.next.verified ? '  nothing to rebuild' : '  nothing to rebuild, yet the target does not verify under the next policy (see above)');
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
  const a = parseArgs(rest, {
    booleans: ['json', 'no-local-store'],
    strings: ['policy', 'to', 'attr', 'html', 'nix-db', ...LIMIT_FLAGS],
    repeated: ['cache', 'db'],
  });
  if (a.flags.has('help')) {
    process.stdout.write(`${PLAN_HELP}\n`);
    return EXIT_OK;
  }
  const [target, ...extra] = a.positionals;
  if (target === undefined) throw new BuildtraceError('USAGE', 'plan needs a TARGET (an output path, a .drv or a .nix file)');
  if (extra.length > 0) throw new BuildtraceError('USAGE', `unexpected argument ${extra[0]}`);
  const currentFile = a.values.get('policy');
  const nextFile = a.values.get('to');
  if (!currentFile || !nextFile) throw new BuildtraceError('USAGE', 'plan needs --policy CURRENT and --to NEXT');
  // the same sources, target door and last mile as trace-verify TARGET
  const { sources, facts, notes, store, limits } = await openConsumerSources(a);
  // both policies' files load before any work: a broken NEXT is a usage error, not a verdict
  loadTrustPolicy(currentFile);
  loadTrustPolicy(nextFile);
  const loader = new DrvLoader('/nix/store', Number.POSITIVE_INFINITY);
  const doorFacts = storeTargetFacts(loader, a.values.get('nix-db') ?? DEFAULT_NIX_DB);
  const door = await resolveTarget(target, a.values.get('attr'), doorFacts, undefined).finally(() => doorFacts.close());
  const drv = door.drv;
  const common: Common = { sources, facts, loader, limits, notes };
  let current: PolicySide;
  let next: PolicySide;
  try {
    current = await decidePolicy(door, currentFile, common, false);
    next = await decidePolicy(door, nextFile, common, true);
  } finally {
    store?.close();
  }
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
