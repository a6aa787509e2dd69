import type { ClosureGraph, Positions } from '../verify/positions.js';
import type { TrustNode } from '../verify/trust-tree.js';
import { planRebuilds, type RebuildStep } from './rebuild.js';

/**
 * What a policy change costs (trace-verify plan): every derivation of the closure decided as
 * its own target under the current and the next policy, by the verifier's one code path; the
 * minimal rebuild set (rebuild.ts); who is missing where. Pure: the runs happen in verify/plan.ts.
 */

/** A trust-tree identity as one policy sees it. */
export interface IdentityInfo {
  readonly name: string;
  /** The key's fingerprint (policy keys); absent for TEE identities (matched by name). */
  readonly fingerprint?: string;
  /** Whether its claims count (active, and admitted: TEE evidence passed). */
  readonly counts: boolean;
  /** Why not, or how it is admitted. */
  readonly why: string;
}

export interface PolicySide {
  readonly file: string;
  readonly graph: ClosureGraph;
  readonly at: Positions;
  readonly trust: TrustNode;
  readonly trustText: string;
  readonly maxWorlds: number;
  readonly identities: readonly IdentityInfo[];
  /** The target's verdict as trace-verify gives it: trust, the target's paths, then the last mile. */
  readonly targetVerified: boolean;
  /** What failed the target beyond its derivations' trust (last mile, target-unproven). */
  readonly targetProblems: readonly TargetProblem[];
  /** Derivations verified in trust whose verified world holds a path the sources hold other content for, and why. */
  readonly contentMismatch: ReadonlyMap<string, readonly string[]>;
}

interface TargetProblem {
  readonly drv: string;
  readonly code: string;
  readonly detail: string;
}

export type Status = 'both' | 'current-only' | 'next-only' | 'neither';
type Action = 'verified' | 'rebuild' | 'saved' | 'content-mismatch';

interface PlanDerivation {
  readonly drv: string;
  readonly name: string;
  readonly kind: 'ca' | 'ia' | 'fixed';
  /** Indices (into derivations) of its input derivations. */
  readonly inputs: readonly number[];
  readonly status: Status;
  readonly action: Action;
  /** Lowest rebuilds it waits for (at most 8, lowest first), when it fails under the next policy. */
  readonly blockedBy?: readonly string[];
  /** Action content-mismatch: the last mile's findings (a path whose content at a cache or the local store is not the attested one). */
  readonly lastMile?: readonly string[];
}

interface Absence {
  readonly identity: string;
  readonly why: string;
}

interface PlanRebuild extends RebuildStep {
  readonly name: string;
  readonly kindOfDrv: 'ca' | 'ia' | 'fixed';
  /** Identities whose claims counted here under the current policy and do not under the next. */
  readonly absent: readonly Absence[];
}

interface PlanSide {
  readonly policy: string;
  readonly trust: string;
  /** trace-verify's verdict for the target under this policy (trust, the target's paths, the last mile). */
  readonly verified: boolean;
  /** Problems of that verdict beyond trust: last mile, target-unproven. */
  readonly targetProblems: readonly TargetProblem[];
}

export interface Plan {
  readonly target: string;
  readonly current: PlanSide;
  readonly next: PlanSide;
  readonly counts: {
    readonly derivations: number;
    readonly stillVerified: number;
    readonly lost: number;
    readonly gained: number;
    readonly failingBoth: number;
    readonly toRebuild: number;
    readonly savedIfReproducible: number;
    /** Verified in trust under the next policy, but content at the caches/local store is not what was attested. */
    readonly contentMismatch: number;
  };
  /** The next policy's identities whose claims do not count, and why; and current identities the next policy does not have. */
  readonly notCounting: readonly Absence[];
  readonly rebuild: readonly PlanRebuild[];
  readonly derivations: readonly PlanDerivation[];
  readonly commands: { readonly drvs: readonly string[]; readonly nixStore: readonly string[]; readonly nixBuild: readonly string[] };
}

interface PlanInput {
  readonly target: string;
  readonly current: PolicySide;
  readonly next: PolicySide;
  readonly nameOf: (drv: string) => string;
  readonly kindOf: (drv: string) => 'ca' | 'ia' | 'fixed';
}

/** The next policy's name for a current identity: the same key (by fingerprint), else the same TEE identity name. */
function identityMap(current: readonly IdentityInfo[], next: readonly IdentityInfo[]): (name: string) => string | undefined {
  const byFp = new Map(next.filter((i) => i.fingerprint !== undefined).map((i) => [i.fingerprint as string, i.name]));
  const measured = new Set(next.filter((i) => i.fingerprint === undefined).map((i) => i.name));
  const m = new Map<string, string | undefined>();
  for (const i of current) m.set(i.name, i.fingerprint !== undefined ? byFp.get(i.fingerprint) : measured.has(i.name) ? i.name : undefined);
  return (name) => m.get(name);
}

const BLOCKERS_SHOWN = 8;

export function makePlan(input: PlanInput): Plan {
  const { current, next, target } = input;
  const toNext = identityMap(current.identities, next.identities);
  const nextInfo = new Map(next.identities.map((i) => [i.name, i]));
  const counting = next.identities.filter((i) => i.counts).map((i) => i.name);
  const order = next.graph.order;
  const rb = planRebuilds({
    current: current.graph,
    next: next.graph,
    currentAt: current.at,
    nextAt: next.at,
    nextTrust: next.trust,
    maxWorlds: next.maxWorlds,
    counting,
    toNext,
  });
  const stepOf = new Map(rb.steps.map((s) => [s.drv, s]));

  // which current identities are missing at a derivation, and why
  const absentAt = (d: string): Absence[] => {
    const v = current.at.at(d);
    const had = new Set((v.verified ? v.entries : (current.graph.nodes.get(d)?.entries ?? [])).filter((e) => e.udrv === d).map((e) => e.signer));
    const now = new Set((next.graph.nodes.get(d)?.entries ?? []).map((e) => e.signer));
    const out: Absence[] = [];
    for (const s of [...had].sort()) {
      const n = toNext(s);
      const info = n === undefined ? undefined : nextInfo.get(n);
      if (n === undefined || info === undefined) out.push({ identity: s, why: 'not in the next policy' });
      else if (!info.counts) out.push({ identity: s, why: info.why });
      else if (!now.has(n)) out.push({ identity: s, why: `its claim here does not count under the next policy (as ${n})` });
    }
    return out;
  };

  const index = new Map(order.map((d, i) => [d, i]));
  const blockers = new Map<string, string[]>();
  const derivations: PlanDerivation[] = order.map((d) => {
    const cur = current.at.verified(d);
    const nxt = next.at.verified(d);
    const status: Status = cur && nxt ? 'both' : cur ? 'current-only' : nxt ? 'next-only' : 'neither';
    const mismatch = nxt ? next.contentMismatch.get(d) : undefined;
    const action: Action = mismatch ? 'content-mismatch' : nxt ? 'verified' : stepOf.has(d) ? 'rebuild' : 'saved';
    const inputs = next.graph.inputsOf(d).map((g) => index.get(g) as number);
    let blockedBy: string[] | undefined;
    if (!nxt) {
      // inputs come first in `order`, so their blockers are known
      const set = new Set<string>();
      for (const g of next.graph.inputsOf(d)) for (const b of blockers.get(g) ?? []) set.add(b);
      if (stepOf.has(d)) set.add(d);
      blockedBy = [...set].sort((a, b) => (index.get(a) as number) - (index.get(b) as number)).slice(0, BLOCKERS_SHOWN);
      blockers.set(d, blockedBy);
    }
    return {
      drv: d,
      name: input.nameOf(d),
      kind: input.kindOf(d),
      inputs,
      status,
      action,
      ...(blockedBy ? { blockedBy } : {}),
      ...(mismatch ? { lastMile: mismatch } : {}),
    };
  });
  const rebuild: PlanRebuild[] = rb.steps.map((s) => ({ ...s, name: input.nameOf(s.drv), kindOfDrv: input.kindOf(s.drv), absent: absentAt(s.drv) }));
  const drvs = rebuild.map((r) => r.drv);
  const count = (f: (d: PlanDerivation) => boolean): number => derivations.filter(f).length;
  return {
    target,
    current: { policy: current.file, trust: current.trustText, verified: current.targetVerified, targetProblems: current.targetProblems },
    next: { policy: next.file, trust: next.trustText, verified: next.targetVerified, targetProblems: next.targetProblems },
    counts: {
      derivations: derivations.length,
      stillVerified: count((d) => d.action === 'verified'),
      lost: count((d) => d.status === 'current-only'),
      gained: count((d) => d.status === 'next-only'),
      failingBoth: count((d) => d.status === 'neither'),
      toRebuild: rebuild.length,
      savedIfReproducible: rb.saved.size,
      contentMismatch: count((d) => d.action === 'content-mismatch'),
    },
    notCounting: [
      ...next.identities.filter((i) => !i.counts).map((i) => ({ identity: i.name, why: i.why })),
      ...current.identities.filter((i) => toNext(i.name) === undefined).map((i) => ({ identity: i.name, why: 'not in the next policy' })),
    ],
    rebuild,
    derivations,
    commands:
      drvs.length === 0
        ? { drvs, nixStore: [], nixBuild: [] }
        : {
            drvs,
            // realise first (inputs fetched or built); --check then rebuilds each locally even when
            // its output was substituted, and fails loudly when the rebuild does not reproduce
            nixStore: [`nix-store --realise ${drvs.join(' ')}`, `nix-store --realise --check ${drvs.join(' ')}`],
            nixBuild: [`nix-build --no-out-link ${drvs.join(' ')}`, `nix-build --no-out-link --check ${drvs.join(' ')}`],
          },
  };
}
